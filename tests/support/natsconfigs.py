"""nats-server started from the committed ``nats/*.conf`` files, unchanged, on free loopback ports.

The files are used as they are: command-line flags override their ports (``-p``, ``--cluster``,
``--routes``) and the store directory, which the files give relative to the working directory, lands in
a temporary directory because the server runs there. Environment variables feed the nkeys variant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .natsserver import nats_server_binary
from .ports import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
NATS_DIR = REPO / "nats"

# The development passwords whose bcrypt hashes nats/accounts.conf holds.
DEV_USERS = {
    "admin": ("swtel-admin", "swtel-admin-dev"),
    "agent": ("swtel-agent", "swtel-agent-dev"),
    "hub": ("swtel-hub", "swtel-hub-dev"),
}
# The inbox prefix each role must use with nats/permissions.conf (setting nats_inbox_prefix).
INBOX = {"admin": "_INBOX", "agent": "_INBOX_agent", "hub": "_INBOX_hub"}


@dataclass
class ConfiguredServer:
    """One nats-server process running ``config`` (a path under ``nats/``) in ``workdir``."""

    config: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=dict)
    scheme: str = "nats"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"nats-{self.port}.log"

    def args(self) -> list[str]:
        return [nats_server_binary(), "-c", str(self.config), "-p", str(self.port), *self.extra_args]

    def start(self, wait: bool = True) -> ConfiguredServer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args(), cwd=self.workdir, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait()
        return self

    def wait(self) -> None:
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            raise RuntimeError(f"nats-server did not start:\n{self.log_text()}") from None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def check_config(config: Path, workdir: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``nats-server -t``: parse the file and its includes, load certificates, and exit."""
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)],
        cwd=workdir, env={**os.environ, **(env or {})}, check=False, capture_output=True, text=True, timeout=30,
    )


class ConfiguredCluster:
    """The three nodes of ``nats/cluster/n*.conf`` with their client and route ports moved to free ones."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="swtel-cfgcluster-"))
        route_ports = [free_port() for _ in range(3)]
        routes = ",".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        self.nodes = [
            ConfiguredServer(
                NATS_DIR / "cluster" / f"n{i + 1}.conf",
                self.workdir,
                extra_args=["--cluster", f"nats://127.0.0.1:{route_ports[i]}", "--routes", routes],
            )
            for i in range(3)
        ]

    @property
    def url(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def start(self) -> ConfiguredCluster:
        for n in self.nodes:
            n.start(wait=False)
        for n in self.nodes:
            n.wait()
        return self

    def cleanup(self) -> None:
        for n in self.nodes:
            n.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
