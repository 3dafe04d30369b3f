"""systemd service notifications (sd_notify): READY, STATUS, WATCHDOG and STOPPING.

The agent and hub units are ``Type=notify`` with ``WatchdogSec=``: systemd waits for ``READY=1`` before
it calls the service started, and restarts it when ``WATCHDOG=1`` stops arriving. The protocol is one
datagram of ``KEY=value`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` means
the abstract namespace). Outside systemd the variable is unset and every call is a no-op, so the same code
runs under a terminal, a test or ``swtel demo``. A failed send is logged once and never raised: losing a
notification must not stop collection (systemd will then restart the service, which is the point).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger("swtel.sdnotify")


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return None
    if path.startswith("@"):  # abstract namespace: a leading NUL byte instead of the @
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    log.warning("ignoring NOTIFY_SOCKET=%r: not a path or abstract socket name", path)
    return None


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """How often to send ``WATCHDOG=1`` in seconds (half of ``WatchdogSec=``), or None without a watchdog.

    systemd sets ``$WATCHDOG_USEC`` and, when set, ``$WATCHDOG_PID``: a child that inherited the variables
    but is not the watched process gets None.
    """
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number", usec)
        return None
    return value / 2e6 if value > 0 else None


class Notifier:
    """One per process; cheap to call on every heartbeat."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.address = _address(os.environ if env is None else env)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (keys upper-cased); True when a datagram was sent."""
        if self.address is None:
            return False
        text = "\n".join(f"{k.upper()}={str(v).replace(chr(10), ' ')}" for k, v in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(text.encode(), self.address)
            return True
        except OSError as e:
            if not self._warned:
                log.warning("cannot notify systemd at %r: %s", self.address.replace("\0", "@"), e)
                self._warned = True
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify(ready=1, **({"status": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.notify(status=text)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def stopping(self, status: str | None = None) -> bool:
        return self.notify(stopping=1, **({"status": status} if status else {}))

    async def run_watchdog(self, healthy: Callable[[], bool] | None = None, env: Mapping[str, str] | None = None) -> None:
        """Send ``WATCHDOG=1`` every half ``WatchdogSec`` while ``healthy()`` (default: always); returns at once
        when there is no watchdog. Run it as a task beside the service's own loops.

        The ping proves the event loop still turns. Do not tie it to NATS being reachable: a NATS outage
        would then restart every agent at once, which helps nothing.
        """
        interval = watchdog_interval(env)
        if interval is None or not self.enabled:
            return
        while True:
            if healthy is None or healthy():
                self.watchdog()
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
