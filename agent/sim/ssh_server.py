"""Simulated switches' SSH face: exec and interactive-shell CLI sessions, one listener per device.

``serve_ssh(devices, host, ports)`` opens one listener per device (device *i* on ``ports[i]``); all
listeners share one server factory that finds the device by the local port of each connection. The
same connections also answer the ``netconf`` subsystem (as real switches do on port 22).

Host key: one Ed25519 key is generated per process (:func:`host_key`) and used by every simulated
device, SSH and NETCONF alike; ``Listeners.known_hosts()`` writes the lines a client needs to verify it.

Privilege: a device with an ``enable_secret`` on a platform with privilege levels (ios, eos, generic)
starts its shells at ``name>``; ``enable`` prompts ``Password:`` (not echoed) and moves to ``name#``;
``show running-config`` is refused until then. Exec requests run privileged (as an AAA privilege-15 user).

Faults (``SimDevice.faults``): ``wrong_password`` rejects every login; ``delay_s`` delays each answer;
``hang`` accepts the login and then never answers; ``drop_stream_after_s`` aborts each connection that
long after it opened; ``garbage`` answers every command with random bytes; ``no_exec`` refuses exec
requests (the channel opens, the request fails: shells and the NETCONF subsystem still work).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import asyncssh

from . import cli
from .model import SimDevice

log = logging.getLogger("swtel.sim.ssh")

MAX_LINE = 4096  # a shell line longer than this is dropped (bounded input buffer)
_HOST_KEY: asyncssh.SSHKey | None = None

ProcessHandler = Callable[[asyncssh.SSHServerProcess, SimDevice], Awaitable[None]]


def host_key() -> asyncssh.SSHKey:
    """The process's simulator host key, generated on first use (never written to disk)."""
    global _HOST_KEY
    if _HOST_KEY is None:
        _HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")
    return _HOST_KEY


def garbage(dev: SimDevice, n: int = 512) -> bytes:
    """Bytes that parse as nothing: no JSON, no XML, no framing, no prompt."""
    return b"\x00\xff\xfe" + random.Random(dev.seed).randbytes(n).replace(b"#", b"?").replace(b">", b"?")


class _Session(asyncssh.SSHServerProcess):
    """asyncssh's process session, refusing exec requests when the device has the ``no_exec`` fault."""

    def __init__(self, factory: Callable[[asyncssh.SSHServerProcess], Awaitable[None]], dev: SimDevice) -> None:
        super().__init__(factory, None, 0, False)
        self._dev = dev

    def exec_requested(self, command: str) -> bool:
        return not self._dev.faults.no_exec and super().exec_requested(command)


class _DeviceServer(asyncssh.SSHServer):
    """One per connection; finds its device from the port the client connected to."""

    def __init__(self, by_port: dict[int, SimDevice], live: set[asyncssh.SSHServerConnection],
                 factory: Callable[[asyncssh.SSHServerProcess], Awaitable[None]]) -> None:
        self._by_port = by_port
        self._live = live
        self._factory = factory
        self._conn: asyncssh.SSHServerConnection | None = None
        self._dev: SimDevice | None = None
        self._drop: asyncio.TimerHandle | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._live.add(conn)
        port = conn.get_extra_info("sockname")[1]
        self._dev = self._by_port[port]
        conn.set_extra_info(swtel_device=self._dev)
        after = self._dev.faults.drop_stream_after_s
        if after is not None:
            self._drop = asyncio.get_running_loop().call_later(after, conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self._conn)  # type: ignore[arg-type]
        if self._drop:
            self._drop.cancel()

    def session_requested(self) -> _Session:
        assert self._dev is not None
        return _Session(self._factory, self._dev)

    def begin_auth(self, username: str) -> bool:
        return True  # always ask for a password

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        dev = self._dev
        assert dev is not None
        return not dev.faults.wrong_password and username == dev.username and password == dev.password


class Listeners:
    """What ``serve_ssh``/``serve_netconf`` return: the open listeners, their key, and ``close()``."""

    def __init__(self, acceptors: list[asyncssh.SSHAcceptor], host: str, ports: Sequence[int],
                 live: set[asyncssh.SSHServerConnection]) -> None:
        self.acceptors = acceptors
        self.live = live  # open connections: closing a listener leaves them open, close() ends them
        self.host = host
        self.ports = list(ports)
        self.host_key = host_key()

    def known_hosts(self) -> str:
        """OpenSSH known_hosts lines for every listener (for clients that verify host keys)."""
        pub = self.host_key.export_public_key().decode().split()[:2]
        return "".join(f"[{self.host}]:{p} {' '.join(pub)}\n" for p in self.ports)

    async def close(self) -> None:
        for a in self.acceptors:
            a.close()
        await asyncio.gather(*(a.wait_closed() for a in self.acceptors), return_exceptions=True)
        self.acceptors = []
        conns = list(self.live)
        for c in conns:
            c.close()
        done = await asyncio.gather(*(asyncio.wait_for(c.wait_closed(), 2.0) for c in conns), return_exceptions=True)
        for c, r in zip(conns, done, strict=True):
            if isinstance(r, BaseException):
                c.abort()


async def listen(devices: Sequence[SimDevice], host: str, ports: Sequence[int],
                 handler: ProcessHandler) -> Listeners:
    """One SSH listener per device; ``handler(process, device)`` serves each session.

    A port of 0 picks a free port; ``Listeners.ports`` holds the ports actually bound, in device order.
    """
    if len(devices) != len(ports):
        raise ValueError(f"{len(devices)} devices but {len(ports)} ports")
    by_port: dict[int, SimDevice] = {}
    live: set[asyncssh.SSHServerConnection] = set()

    async def process_factory(process: asyncssh.SSHServerProcess) -> None:
        dev = process.get_extra_info("swtel_device")
        try:
            await handler(process, dev)
        except (asyncssh.Error, ConnectionError, BrokenPipeError):
            pass  # the client went away
        finally:
            if not process.is_closing():
                process.close()

    options = asyncssh.SSHServerConnectionOptions(
        server_factory=lambda: _DeviceServer(by_port, live, process_factory), server_host_keys=[host_key()],
        encoding=None, line_editor=False, allow_scp=False,
        login_timeout=30, keepalive_interval=0,
    )
    acceptors: list[asyncssh.SSHAcceptor] = []
    bound: list[int] = []
    try:
        for dev, port in zip(devices, ports, strict=True):
            acceptor = await asyncssh.listen(host, port, options=options, reuse_address=True)
            acceptors.append(acceptor)
            # no connection callback can run before the next await, so the map is complete in time
            bound.append(acceptor.get_port())
            by_port[bound[-1]] = dev
    except BaseException:
        await Listeners(acceptors, host, bound, live).close()
        raise
    return Listeners(acceptors, host, bound, live)


async def cli_session(process: asyncssh.SSHServerProcess, dev: SimDevice) -> None:
    """An exec request (one command) or an interactive shell (prompt, echo, commands until exit)."""
    if process.subsystem == "netconf":
        from .netconf_server import netconf_session  # the same port answers NETCONF, as on real switches

        await netconf_session(process, dev)
        return
    if process.subsystem is not None:
        process.exit(1)
        return
    if dev.faults.hang:
        await process.wait_closed()
        return
    if process.command is not None:
        out, status = await _answer(dev, process.command)
        process.stdout.write(out)
        process.exit(status)
        return
    await _shell(process, dev)


async def _answer(dev: SimDevice, command: str, privileged: bool = True) -> tuple[bytes, int]:
    if dev.faults.delay_s:
        await asyncio.sleep(dev.faults.delay_s)
    if dev.faults.garbage:
        return garbage(dev), 0
    try:
        return cli.run(dev, command, privileged).encode(), 0
    except cli.CommandError as e:
        return f"{e}\n".encode(), 1


async def _shell(process: asyncssh.SSHServerProcess, dev: SimDevice) -> None:
    privileged = not cli.starts_unprivileged(dev)
    prompt = cli.prompt(dev, privileged).encode()
    process.stdout.write(b"\r\n" + prompt)
    asking_secret = False
    buf = b""
    while True:
        data = await process.stdin.read(4096)
        if not data:
            return
        buf += data
        while True:
            cut = min((i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                if len(buf) > MAX_LINE:
                    buf = b""
                break
            line, buf = buf[:cut].decode(errors="replace").strip(), buf[cut + 1 :].lstrip(b"\n")
            if asking_secret:  # the answer to "Password:" is not echoed
                asking_secret = False
                process.stdout.write(b"\r\n")
                if line == dev.enable_secret:
                    privileged, prompt = True, cli.prompt(dev, True).encode()
                else:
                    process.stdout.write(b"% Access denied\r\n")
                process.stdout.write(prompt)
                continue
            process.stdout.write(line.encode() + b"\r\n")  # terminal echo
            if line in ("exit", "quit", "logout"):
                process.exit(0)
                return
            if line == "enable" and dev.platform in cli.ENABLE_PLATFORMS:
                if not privileged:
                    asking_secret = True
                    process.stdout.write(b"Password: ")
                    continue
            elif line:
                out, _ = await _answer(dev, line, privileged)
                if out and not out.endswith(b"\n"):
                    out += b"\n"
                process.stdout.write(out.replace(b"\n", b"\r\n"))
            process.stdout.write(prompt)


async def serve_ssh(devices: list[SimDevice], host: str, ports: list[int]) -> Listeners:
    """Serve each device's CLI over SSH on its port; ``await result.close()`` stops them all."""
    return await listen(devices, host, ports, cli_session)
