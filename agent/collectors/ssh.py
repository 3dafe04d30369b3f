"""SSH CLI collector: runs each platform's show commands and parses them into normalised samples.

One SSH connection per device is kept open and reused for every poll (asyncssh keepalives detect a dead
peer). Commands run as exec requests, one channel each, or, for platforms that need it (IOS-XR by
default, or any device tagged ``ssh_mode=shell``), in one interactive shell: the collector learns the
prompt at login, turns paging off, then sends one command at a time and reads up to the next prompt.
Every command has a timeout and a size limit; see :mod:`.polling` for statuses and reconnects.

Use ``collector(SshOptions.from_settings(settings))`` in the agent; ``run`` uses default options.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

import asyncssh
from swtel.shared import wire

from . import parsers, polling, sshconn
from .base import Collector, CollectorContext
from .sshconn import SshOptions

# a prompt is the last line of what the device printed: up to 80 characters ending in # > $ or %
_PROMPT = re.compile(rb"(?:^|[\r\n])([^\r\n]{1,80}?[#>$%] ?)$")


class CommandFailed(polling.DeviceError):
    """The device refused a command (unknown command, bad syntax)."""


class CliSession:
    def __init__(self, conn: asyncssh.SSHClientConnection, platform: ModuleType, opts: SshOptions,
                 shell: bool) -> None:
        self.conn = conn
        self.platform = platform
        self.opts = opts
        self.shell = shell
        self._proc: asyncssh.SSHClientProcess | None = None
        self._prompt = b""
        self._lock = asyncio.Lock()  # one command at a time in a shell

    async def open(self) -> None:
        if not self.shell:
            return
        async with asyncio.timeout(self.opts.timeout_s):
            self._proc = await self.conn.create_process(term_type="vt100", term_size=(511, 48), encoding=None)
            banner = await self._read_until(None)
        m = _PROMPT.search(banner)
        assert m is not None  # _read_until(None) returns only once the prompt pattern matched
        self._prompt = m.group(1).lstrip()
        for cmd in self.platform.PAGING_OFF:
            await self.command(cmd)

    async def command(self, cmd: str) -> str:
        async with asyncio.timeout(self.opts.timeout_s):
            if not self.shell:
                raw = await self._exec(cmd)
            else:
                async with self._lock:
                    raw = await self._shell_command(cmd)
        text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "")
        if self.platform.ERROR_RE.search(text.lstrip()):
            raise CommandFailed(f"{cmd!r}: {text.strip().splitlines()[0][:200]}")
        return text

    async def poll(self, groups: set[str]) -> list[wire.Sample]:
        samples: list[wire.Sample] = []
        for group in sorted(groups):
            for cmd in self.platform.COMMANDS.get(group, []):
                text = await self.command(cmd)
                samples += self.platform.parse(cmd, text, time.time_ns())
        return samples

    async def _exec(self, cmd: str) -> bytes:
        proc = await self.conn.create_process(cmd, encoding=None, stderr=asyncssh.STDOUT)
        try:
            proc.stdin.write_eof()
            buf = bytearray()
            while chunk := await proc.stdout.read(65536):
                buf += chunk
                if len(buf) > self.opts.max_output:
                    raise polling.DeviceError(f"{cmd!r}: output larger than {self.opts.max_output} bytes")
            await proc.wait_closed()
            if proc.exit_status not in (0, None):
                first = bytes(buf).decode(errors="replace").strip().splitlines()[:1]
                raise CommandFailed(f"{cmd!r}: exit status {proc.exit_status}: {first[0][:200] if first else ''}")
            return bytes(buf)
        finally:
            proc.close()

    async def _shell_command(self, cmd: str) -> bytes:
        assert self._proc is not None
        self._proc.stdin.write(cmd.encode() + b"\n")
        out = await self._read_until(self._prompt)
        out = out[: -len(self._prompt)]
        first, sep, rest = out.partition(b"\n")
        return rest if sep and cmd.encode() in first else out  # drop the terminal's echo of the command

    async def _read_until(self, prompt: bytes | None) -> bytes:
        """Read the shell until it ends with ``prompt`` at a line start (or any prompt when ``None``)."""
        assert self._proc is not None
        buf = bytearray()
        while True:
            chunk = await self._proc.stdout.read(65536)
            if not chunk:
                raise EOFError("the shell closed")
            buf += chunk
            if len(buf) > self.opts.max_output:
                raise polling.SessionBroken(f"no prompt within {self.opts.max_output} bytes")
            if prompt is None:
                if _PROMPT.search(buf[-100:]):
                    return bytes(buf)
            elif buf.endswith(prompt) and (len(buf) == len(prompt) or buf[-len(prompt) - 1] in b"\r\n"):
                return bytes(buf)


def use_shell(device: wire.Device, platform: ModuleType) -> bool:
    mode = device.tags.get("ssh_mode", "")
    return mode == "shell" if mode in ("shell", "exec") else platform.SHELL


def collector(opts: SshOptions | None = None) -> Collector:
    opts = opts or SshOptions()

    @asynccontextmanager
    async def session(ctx: CollectorContext) -> AsyncIterator[polling.Poll]:
        platform = parsers.platform(ctx.device.platform)
        conn = await sshconn.connect(ctx.device, ctx.credential, opts)
        try:
            cli = CliSession(conn, platform, opts, use_shell(ctx.device, platform))
            await cli.open()
            yield cli.poll
        finally:
            await sshconn.close(conn)

    async def run(ctx: CollectorContext) -> None:
        mode = "shell" if use_shell(ctx.device, parsers.platform(ctx.device.platform)) else "exec"
        await polling.supervise(ctx, lambda: session(ctx), f"ssh {mode} {ctx.device.address}:{ctx.device.port}")

    return run


run = collector()
