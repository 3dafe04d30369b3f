"""`swtel demo` as a user runs it: a subprocess whose output is read by a thread, a wait for the banner,
and a Ctrl-C stop that must exit 0 without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path


class DemoProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}  # only what the test sets
        base.update(env or {})
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "swtel"), "demo", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=base)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Dashboard:" in line:
                self._ready.set()

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def tail(self, n: int = 40) -> str:
        return "".join(self.lines[-n:])

    def wait_ready(self, timeout_s: float = 240) -> str:
        """The banner line with the dashboard URL, or a failure with the demo's last lines."""
        assert self._ready.wait(timeout_s), f"demo did not print the dashboard URL within {timeout_s:.0f}s:\n{self.tail()}"
        return next(line for line in self.lines if "Dashboard:" in line)

    def stop(self, timeout_s: float = 90) -> None:
        """Ctrl-C; the demo must exit 0, say so, and print no traceback."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        finally:
            self._reader.join(10)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        assert code == 0, self.tail(30)
        assert "Traceback" not in self.out, self.out
