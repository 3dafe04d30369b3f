"""SSH connections for the SSH CLI and NETCONF collectors: options, host-key policy, connect.

Host-key policy (setting ``ssh_host_key_policy``):

- ``known_hosts`` (default): the server's key must be in the known_hosts file (``ssh_known_hosts``,
  default ``~/.ssh/known_hosts``); an unknown or changed key fails the session with status ``error``.
- ``accept-new``: trust on first use. A host with no entry is accepted once and its key appended to the
  known_hosts file; from then on the stored key is verified, so a changed key fails like above.
- ``off``: no verification (lab only); logged as a warning once per process.

The agent's own ``~/.ssh/config`` and ssh-agent are not used: what a device gets is decided by the
inventory and settings alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from swtel.shared import wire
from swtel.shared.settings import Settings

from .base import Credential
from .polling import DeviceError

log = logging.getLogger("swtel.agent.ssh")

POLICIES = ("known_hosts", "accept-new", "off")


class KnownHostsMissing(DeviceError):
    """Policy known_hosts, but the file cannot be read: no host can be verified."""


@dataclass(frozen=True)
class SshOptions:
    host_key_policy: str = "known_hosts"
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    timeout_s: float = 10.0  # connect+login, and each command or RPC
    keepalive_s: float = 15.0
    max_output: int = 16 * 1024 * 1024  # largest command output or NETCONF reply accepted

    def __post_init__(self) -> None:
        if self.host_key_policy not in POLICIES:
            raise ValueError(f"host key policy must be one of {', '.join(POLICIES)}")

    @classmethod
    def from_settings(cls, s: Settings) -> SshOptions:
        return cls(host_key_policy=s.ssh_host_key_policy, known_hosts=s.ssh_known_hosts,
                   timeout_s=s.ssh_timeout_s, keepalive_s=s.ssh_keepalive_s)

    @property
    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts).expanduser() if self.known_hosts else Path.home() / ".ssh" / "known_hosts"


class _TrustOnFirstUse:
    """The accept-new store of one known_hosts file: parsed once per process, appended as hosts are met."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: asyncssh.SSHKnownHosts | None = None
        self._learned: dict[tuple[str, int], asyncssh.SSHKey] = {}

    def trusted(self, host: str, port: int) -> list[asyncssh.SSHKey]:
        if (host, port) in self._learned:
            return [self._learned[(host, port)]]
        if self._file is None:
            text = self.path.read_text() if self.path.exists() else ""
            self._file = asyncssh.import_known_hosts(text)
        try:
            return list(self._file.match(host, host, port)[0])
        except ValueError:  # a host name where an address is expected
            return list(self._file.match(host, "", port)[0])

    def learn(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        self._learned[(host, port)] = key
        pattern = host if port == 22 else f"[{host}]:{port}"
        line = f"{pattern} {' '.join(key.export_public_key().decode().split()[:2])}\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())  # one small O_APPEND write: never interleaved with another
        finally:
            os.close(fd)
        log.info("accept-new: trusted the host key of %s:%d", host, port)


_tofu: dict[Path, _TrustOnFirstUse] = {}
_parsed: dict[Path, tuple[float, asyncssh.SSHKnownHosts]] = {}


def _known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    """The parsed file, re-read only when it changes (thousands of devices must not parse it each)."""
    try:
        mtime = path.stat().st_mtime
    except OSError as e:
        raise KnownHostsMissing(f"known_hosts file {path}: {e.strerror}") from None
    cached = _parsed.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, asyncssh.import_known_hosts(path.read_text()))
        _parsed[path] = cached
    return cached[1]
_warned_off = False


def _host_key_check(opts: SshOptions, host: str, port: int) -> tuple[Any, bool]:
    """(known_hosts argument for asyncssh, whether to learn the key after connecting)."""
    global _warned_off
    if opts.host_key_policy == "off":
        if not _warned_off:
            log.warning("SSH host keys are NOT verified (ssh_host_key_policy=off): use this in a lab only")
            _warned_off = True
        return None, False
    if opts.host_key_policy == "known_hosts":
        return _known_hosts(opts.known_hosts_path), False
    store = _tofu.setdefault(opts.known_hosts_path, _TrustOnFirstUse(opts.known_hosts_path))
    keys = store.trusted(host, port)
    if keys:
        return (keys, [], []), False
    return None, True


def _ciphers() -> list[str]:
    """asyncssh's default ciphers with AES-GCM first. asyncssh prefers chacha20-poly1305, which it runs as
    four cipher contexts and a Poly1305 per packet in Python; AES-GCM is one AEAD call per packet (the
    cipher was ~20 % of a shell poll's CPU). Devices without GCM still negotiate the rest of the list."""
    from asyncssh.encryption import get_default_encryption_algs

    default = [a.decode() for a in get_default_encryption_algs()]
    gcm = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    return [a for a in gcm if a in default] + [a for a in default if a not in gcm]


ENCRYPTION_ALGS = _ciphers()


def polling_keepalive_s(device: wire.Device, opts: SshOptions) -> float:
    """The keepalive interval of a polling collector's session: none when the device is polled at least
    every ``keepalive_s`` (each poll is a round trip with a timeout, which detects a dead peer as well, and
    keeps NAT and idle timers fresh), ``keepalive_s`` otherwise. asyncssh re-arms its keepalive timer on
    every arrival (a timer cancelled and scheduled each time: ~5 % of a shell poll's CPU)."""
    from .paths import groups
    from .polling import subscriptions

    intervals = [s.interval_s for s in subscriptions(device) if groups(s.paths)]
    return 0.0 if intervals and min(intervals) <= opts.keepalive_s else opts.keepalive_s


async def connect(device: wire.Device, credential: Credential | None, opts: SshOptions,
                  keepalive_s: float | None = None) -> asyncssh.SSHClientConnection:
    """An authenticated connection; raises asyncssh/OS errors or TimeoutError for the caller to classify.
    ``keepalive_s`` overrides ``opts.keepalive_s`` (0: no keepalives)."""
    known, learn = _host_key_check(opts, device.address, device.port)
    auth: dict[str, Any] = {}
    if credential is not None:
        auth = {"username": credential.username, "password": credential.password,
                "client_keys": [credential.ssh_key] if credential.ssh_key else None}
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives as the
    # connection completes, and a collector or job that loses its cancel keeps running after its slot stopped
    async with asyncio.timeout(opts.timeout_s + 1):
        conn = await asyncssh.connect(
            device.address, device.port, known_hosts=known, config=None, agent_path=None,
            connect_timeout=opts.timeout_s, login_timeout=opts.timeout_s,
            keepalive_interval=opts.keepalive_s if keepalive_s is None else keepalive_s, keepalive_count_max=3,
            encryption_algs=ENCRYPTION_ALGS, **auth,
        )
    if learn:
        key = conn.get_server_host_key()
        if key is not None:
            _tofu[opts.known_hosts_path].learn(device.address, device.port, key)
    return conn


class OutputTooLarge(DeviceError):
    """A channel received more than its limit without the end its reader waits for."""


class Inbox(asyncssh.SSHClientSession[bytes]):
    """One channel's received bytes, for a reader that waits for a condition on them: a prompt at the end,
    a whole NETCONF message, the channel's close after an exec.

    asyncssh's process streams wake the reading task for each arrival and pass the bytes through a reader
    lock, a list, a join and a copy into the caller's buffer; here every packet is appended to one buffer
    and the task is woken once, when ``ready()`` (called after each arrival, so it sees a prompt split
    over packets whole) says its condition holds. Stdout and stderr land in the same buffer, as a
    terminal shows them."""

    def __init__(self, max_bytes: int) -> None:
        self.buf = bytearray()
        self.max_bytes = max_bytes
        self.closed = False  # the channel closed: an exec's command ended, or the shell or subsystem exited
        self.exit_status: int | None = None
        self._error: BaseException | None = None
        self._ready: Callable[[], bool] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._deadline: float | None = None  # of the read in progress (loop clock), if it has one
        self._timeout_s = 0.0  # that read's timeout, for its error message
        self._timer: asyncio.TimerHandle | None = None  # fires at or before _deadline while armed

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self._error is not None:
            return  # over the limit already: the reader is told and closes the channel
        self.buf += data
        if len(self.buf) > self.max_bytes:
            self.buf = bytearray()
            self._error = OutputTooLarge(f"more than {self.max_bytes} bytes without the end of the answer")
        self._check()

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if exc is not None and self._error is None:
            self._error = exc
        self._check()

    def _check(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            if self._error is not None:
                waiter.set_exception(self._error)
            elif self._ready is not None and self._ready():
                waiter.set_result(None)
            elif self.closed:
                waiter.set_exception(EOFError("the channel closed"))
        except Exception as e:  # noqa: BLE001 - the condition's own error (bad framing) is the reader's
            waiter.set_exception(e)

    async def until(self, ready: Callable[[], bool], timeout_s: float | None = None) -> None:
        """Return once ``ready()`` is true (it may already be); raise the channel's error, EOFError if it
        closes first, or TimeoutError after ``timeout_s``.

        The timeout is one timer per channel, not per read: a shell's reads follow each other within
        milliseconds, each with a later deadline, so a timer armed for an earlier read still fires first
        and then moves to the current read's deadline (or stops when no read is waiting). Scheduling and
        cancelling a timer per command (``asyncio.timeout``) was ~3 % of a shell poll's CPU."""
        assert self._waiter is None, "one reader at a time"
        loop = asyncio.get_running_loop()
        self._ready = ready
        self._waiter = loop.create_future()
        self._deadline = None if timeout_s is None else loop.time() + timeout_s
        if self._deadline is not None:
            self._timeout_s = timeout_s
            if self._timer is None or self._timer.when() > self._deadline:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(self._deadline, self._expire)
        try:
            self._check()
            await self._waiter
        finally:
            self._waiter = self._ready = None

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self._deadline is None:
            return  # no timed read waits: the next one arms the timer again
        loop = waiter.get_loop()
        if loop.time() >= self._deadline:
            waiter.set_exception(TimeoutError(f"no answer within {self._timeout_s:g} s"))
        else:  # armed for an earlier read: wait for this one's deadline
            self._timer = loop.call_at(self._deadline, self._expire)

    def take(self) -> bytes:
        """Everything buffered, removed from the buffer."""
        out, self.buf = bytes(self.buf), bytearray()
        return out


async def open_channel(conn: asyncssh.SSHClientConnection, max_bytes: int,
                       **session: Any) -> tuple[asyncssh.SSHClientChannel[bytes], Inbox]:
    """A session channel (``command=`` for an exec, ``subsystem=``, or a shell) read through an :class:`Inbox`."""
    chan, inbox = await conn.create_session(lambda: Inbox(max_bytes), encoding=None, **session)
    return chan, inbox  # type: ignore[return-value]


async def close(conn: asyncssh.SSHClientConnection) -> None:
    """Close without waiting on a peer that does not answer."""
    conn.close()
    try:
        async with asyncio.timeout(2.0):  # not wait_for: see connect()
            await conn.wait_closed()
    except (TimeoutError, asyncssh.Error, OSError):
        conn.abort()
