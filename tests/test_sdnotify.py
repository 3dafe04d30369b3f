"""sd_notify over a real AF_UNIX datagram socket, as systemd listens for it (path and abstract name)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from swtel.shared.sdnotify import Notifier, watchdog_interval


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a file path, like systemd's /run/systemd/notify."""
    d = Path(tempfile.mkdtemp(prefix="swtel-notify-"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(d / "notify"))
    sock.settimeout(2)
    try:
        yield sock, str(d / "notify")
    finally:
        sock.close()
        (d / "notify").unlink(missing_ok=True)
        d.rmdir()


def lines(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_watchdog_stopping(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    try:
        assert n.enabled
        assert n.ready("collecting 0 devices")
        assert lines(sock) == ["READY=1", "STATUS=collecting 0 devices"]
        assert n.status("collecting 12 devices\nfrom 3 sites")  # one line: a newline would start a new field
        assert lines(sock) == ["STATUS=collecting 12 devices from 3 sites"]
        assert n.watchdog()
        assert lines(sock) == ["WATCHDOG=1"]
        assert n.stopping("releasing leases")
        assert lines(sock) == ["STOPPING=1", "STATUS=releasing leases"]
    finally:
        n.close()


def test_abstract_socket_name() -> None:
    name = f"swtel-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        try:
            assert n.ready()
            assert lines(sock) == ["READY=1"]
        finally:
            n.close()


def test_without_systemd_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()
    assert watchdog_interval({}) is None


def test_a_vanished_socket_is_logged_once_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier({"NOTIFY_SOCKET": "/nonexistent/notify"})
    assert not n.ready() and not n.watchdog()
    assert [r.message for r in caplog.records if "cannot notify systemd" in r.message] != []
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1
    n.close()


def test_bad_socket_values_are_ignored() -> None:
    assert not Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled


def test_watchdog_interval_is_half_the_timeout_and_only_for_the_watched_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


@pytest.mark.asyncio
async def test_run_watchdog_pings_while_healthy(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    sock.setblocking(False)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}  # 0.1 s: a ping every 0.05 s
    n = Notifier(env)
    healthy = True
    task = asyncio.create_task(n.run_watchdog(lambda: healthy, env=env))
    loop = asyncio.get_running_loop()
    try:
        for _ in range(3):
            assert await asyncio.wait_for(loop.sock_recv(sock, 4096), 2) == b"WATCHDOG=1"
        healthy = False
        # drain what may have been sent before the flip, then nothing more arrives while unhealthy
        await asyncio.sleep(0.06)
        while True:
            try:
                sock.recv(4096)
            except BlockingIOError:
                break
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.3)
        healthy = True
        assert await asyncio.wait_for(loop.sock_recv(sock, 4096), 2) == b"WATCHDOG=1"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        n.close()


@pytest.mark.asyncio
async def test_run_watchdog_returns_at_once_without_a_watchdog() -> None:
    await asyncio.wait_for(Notifier({"NOTIFY_SOCKET": "/x"}).run_watchdog(env={}), 1)
    await asyncio.wait_for(Notifier({}).run_watchdog(env={"WATCHDOG_USEC": "100000"}), 1)
