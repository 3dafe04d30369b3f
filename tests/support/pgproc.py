"""A private PostgreSQL server that a test may crash and restart (the shared one must never be touched).

Uses the given binaries (``like`` a test server on this machine: its BINDIR, and TimescaleDB preloaded if
it preloads it, so that a crash test runs on the same backend as the rest of the suite), else the local
PostgreSQL binaries (``pg_config --bindir``, else /usr/lib/postgresql/*/bin), else those of the
``pgserver`` wheel. As root, the server runs as the ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .ports import free_port, wait_port


def _bindir() -> Path | None:
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(d) / "initdb").exists():
            return Path(d)
    try:
        import pgserver  # noqa: F401

        d = Path(pgserver.__file__).parent / "pginstall" / "bin"
        return d if (d / "initdb").exists() else None
    except ImportError:
        return None


class PrivatePostgres:
    def __init__(self, bindir: str | None = None, preload: str = "") -> None:
        self.preload = preload
        bindir = Path(bindir) if bindir and (Path(bindir) / "initdb").exists() else _bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL binaries found (initdb, postgres)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="swtel-pgproc-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._user = None
        if os.geteuid() == 0:
            self._user = pwd.getpwnam("postgres")
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)

    def _demote(self) -> None:
        if self._user is not None:
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PrivatePostgres:
        subprocess.run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, preexec_fn=self._demote)
        return self

    def start(self) -> None:
        log = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50",
             *(["-c", f"shared_preload_libraries={self.preload}"] if self.preload else [])],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._demote,
        )
        log.close()
        wait_port("127.0.0.1", self.port, timeout=30)

    def crash(self) -> None:
        """Immediate shutdown (SIGQUIT): no checkpoint, crash recovery at the next start."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(30)
        self.proc = None

    def cleanup(self) -> None:
        self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)
