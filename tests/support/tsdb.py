"""Real Prometheus, VictoriaMetrics and InfluxDB 1.x servers (Debian's packages) for the output tests and
benchmark: each on free loopback ports with a temporary data directory, stopped and removed at the end.

A test whose server binary is missing skips with the install line.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .ports import free_port
from .procs import stop_process


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed: apt-get install {package}")
    return path


class Server:
    binary = ""
    package = ""
    ready_path = "/"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"swtel-{self.package}-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "server.log"
        self.tls: dict[str, Path] | None = None  # set by use_tls(): the server's cert, key and its CA

    def use_tls(self, name: str) -> dict[str, Path]:
        """Serve https with a throw-away CA (``self.ca``: its PEM file)."""
        from swtel.agent.sim.tlsgen import generate

        self.tls = generate(name).write(self.dir / "tls")
        return self.tls

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str | None:
        return str(self.tls["ca_cert"]) if self.tls else None

    def args(self) -> list[str]:
        raise NotImplementedError

    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca) if self.ca else True

    def start(self, timeout: float = 30.0) -> Server:
        need(self.binary, self.package)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args(), stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1, verify=self.verify()).status_code < 300:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.binary} not ready on {self.url} after {timeout}s; log: {self.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class Prometheus(Server):
    """``prometheus --web.enable-remote-write-receiver``; ``scrape`` adds a scrape job (a hub's
    /metrics/devices) with a bearer token; ``basic_auth`` protects the server with a user (bcrypt)."""

    binary, package, ready_path = "prometheus", "prometheus", "/-/ready"

    def __init__(self, *, scrape: tuple[str, str, str] | None = None, basic_auth: tuple[str, str] | None = None,
                 tls: bool = False):
        super().__init__()
        cfg = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1m\n"
        if scrape is not None:
            target, path, token = scrape
            cfg += (f"scrape_configs:\n  - job_name: swtel\n    metrics_path: {path}\n    scrape_interval: 1s\n"
                    f"    honor_timestamps: true\n    authorization:\n      credentials: {token}\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
        (self.dir / "prometheus.yml").write_text(cfg)
        self.web: Path | None = None
        self.auth = basic_auth
        web = ""
        if basic_auth is not None:
            import bcrypt

            hashed = bcrypt.hashpw(basic_auth[1].encode(), bcrypt.gensalt(rounds=4)).decode()
            web += f"basic_auth_users:\n  {basic_auth[0]}: {hashed}\n"
        if tls:  # the same web config file serves https (Prometheus >= 2.24) with a throw-away CA
            cert = self.use_tls("prometheus.test")
            web += f"tls_server_config:\n  cert_file: {cert['server_cert']}\n  key_file: {cert['server_key']}\n"
        if web:
            self.web = self.dir / "web.yml"
            self.web.write_text(web)

    def args(self) -> list[str]:
        a = [self.binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
             "--log.level=warn"]
        if self.web is not None:
            a.append(f"--web.config.file={self.web}")
        return a

    def start(self, timeout: float = 30.0) -> Server:
        if self.auth is None:
            return super().start(timeout)
        need(self.binary, self.package)  # /-/ready needs the password too: wait for a 401 or 200
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args(), stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/-/ready", auth=self.auth, timeout=1, verify=self.verify()).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready on {self.url}; log: {self.log}")
            time.sleep(0.1)

    async def series(self, selector: str, start_s: float, end_s: float) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        """Every raw sample of the series matching ``selector`` (a range query over raw data), keyed by
        the sorted labels without __name__, values keyed by timestamp in ms."""
        window = max(1, int(end_s - start_s) + 5)
        async with httpx.AsyncClient(timeout=30, auth=self.auth, verify=self.verify()) as c:
            r = await c.get(self.url + "/api/v1/query", params={"query": f"{selector}[{window}s]", "time": end_s + 1})
        r.raise_for_status()
        out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
        for res in r.json()["data"]["result"]:
            labels = tuple(sorted((k, v) for k, v in res["metric"].items() if k not in ("__name__", "job", "instance")))
            out[labels] = {round(float(t) * 1000): float(v) for t, v in res["values"]}
        return out


class VictoriaMetrics(Server):
    """``tls=True`` serves https with a throw-away CA (``self.ca``: its PEM file)."""

    binary, package, ready_path = "victoria-metrics", "victoria-metrics", "/health"

    def __init__(self, *, tls: bool = False) -> None:
        super().__init__()
        if tls:
            self.use_tls("vm.test")

    def args(self) -> list[str]:
        a = [self.binary, f"-storageDataPath={self.dir / 'data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-retentionPeriod=100y", "-search.latencyOffset=0s", "-loggerLevel=ERROR"]
        if self.tls:
            a += ["-tls", f"-tlsCertFile={self.tls['server_cert']}", f"-tlsKeyFile={self.tls['server_key']}"]
        return a

    async def series(self, selector: str, start_s: float, end_s: float) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        """Raw samples through /api/v1/export (after a forced flush, so fresh data is searchable)."""
        async with httpx.AsyncClient(timeout=30, verify=self.verify()) as c:
            await c.get(self.url + "/internal/force_flush")
            r = await c.get(self.url + "/api/v1/export",
                            params={"match[]": selector, "start": int(start_s) - 5, "end": int(end_s) + 5})
        r.raise_for_status()
        out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
        import json

        for line in r.text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            labels = tuple(sorted((k, v) for k, v in row["metric"].items() if k != "__name__"))
            out.setdefault(labels, {}).update(dict(zip(row["timestamps"], row["values"])))
        return out


class InfluxDB1(Server):
    """``influxd`` 1.x with a generated config file: HTTP and RPC on free ports; ``auth`` turns on
    authentication with an admin user."""

    binary, package, ready_path = "influxd", "influxdb", "/ping"

    def __init__(self, *, auth: tuple[str, str] | None = None, jwt_secret: str = "") -> None:
        super().__init__()
        self.auth = auth
        self.jwt_secret = jwt_secret  # bearer tokens: JWTs signed with it (HS256) name a user
        rpc = free_port()
        d = self.dir
        (d / "influxdb.conf").write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d / 'meta'}"
[data]
  dir = "{d / 'data'}"
  wal-dir = "{d / 'wal'}"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {'true' if auth else 'false'}
  shared-secret = "{jwt_secret}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "error"
""")

    def args(self) -> list[str]:
        return [self.binary, "-config", str(self.dir / "influxdb.conf")]

    def start(self, timeout: float = 30.0) -> Server:
        super().start(timeout)
        if self.auth is not None and not (self.dir / "admin-created").exists():
            user, password = self.auth  # the first user may be created without credentials
            r = httpx.post(self.url + "/query", data={"q": f"CREATE USER {user} WITH PASSWORD '{password}' WITH ALL PRIVILEGES"})
            r.raise_for_status()
            (self.dir / "admin-created").touch()
        return self

    def token(self, user: str, *, secret: str | None = None, ttl_s: int = 3600) -> str:
        """A bearer token InfluxDB 1.x verifies: a JWT (HS256) with ``username`` and ``exp``, signed with
        the server's shared secret (or ``secret``, to forge one)."""
        import base64
        import hashlib
        import hmac
        import json

        def b64(raw: bytes) -> bytes:
            return base64.urlsafe_b64encode(raw).rstrip(b"=")

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps({"username": user, "exp": int(time.time()) + ttl_s}).encode())
        key = (self.jwt_secret if secret is None else secret).encode()
        sig = b64(hmac.new(key, head + b"." + body, hashlib.sha256).digest())
        return (head + b"." + body + b"." + sig).decode()

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        params = {"q": q, "epoch": "ns", **({"db": db} if db else {})}
        r = httpx.post(self.url + "/query", data=params, auth=self.auth, timeout=30)
        r.raise_for_status()
        body = r.json()
        err = body["results"][0].get("error")
        if err:
            raise RuntimeError(err)
        return body  # type: ignore[no-any-return]

    async def series(self, measurement: str, db: str) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        """Every point of ``measurement``, grouped by tag set, timestamps in ms (the outputs' resolution)."""
        body = self.query(f'SELECT "value" FROM "{measurement}" GROUP BY *', db)
        out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
        for s in body["results"][0].get("series", []):
            labels = tuple(sorted(s.get("tags", {}).items()))
            out[labels] = {int(t) // 1_000_000: float(v) for t, v in s["values"]}
        return out
