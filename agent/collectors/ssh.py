"""SSH CLI collector: runs each platform's show commands and parses them into normalised samples.

One SSH connection per device is kept open and reused for every poll (a dead peer is found by the polls'
own timeouts, or by SSH keepalives when polls are further apart than ``ssh_keepalive_s``). Commands run
as exec requests, one channel each, or, for platforms that need it (IOS-XR by default, or any device
tagged ``ssh_mode=shell``), in one interactive shell: the collector learns the
prompt at login, sends ``enable`` when the platform has privilege levels and the prompt ends in ``>``
(answering a password prompt with the credential's ``enable_secret``), turns paging off, then sends one
command at a time and reads up to the next prompt. A device that refuses exec requests (the session is
probed once at login) is collected through a shell instead, unless it is tagged ``ssh_mode=exec``.

Each command of a poll stands alone: the first variant the device accepts is used (``| json``, then
text) and remembered for the session; what parsed is published, what failed is reported per command
(:class:`polling.PartialPoll`). Every command has a timeout and a size limit; see :mod:`.polling`.

Use ``collector(SshOptions.from_settings(settings))`` in the agent; ``run`` uses default options.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

import asyncssh
from swtel.shared import wire

from . import parsers, polling, sshconn
from .base import CollectorContext, Collector, Credential
from .sshconn import SshOptions

log = logging.getLogger("swtel.agent.ssh")

# a prompt is the last line of what the device printed: up to 80 characters ending in # > $ or %
_PROMPT = re.compile(rb"(?:^|[\r\n])([^\r\n]{1,80}?[#>$%] ?)$")
_PASSWORD = re.compile(rb"(?:^|[\r\n])[^\r\n]{0,40}(?:password|secret)[^\r\n]{0,20}: ?$", re.IGNORECASE)


class CommandFailed(polling.DeviceError):
    """The device refused a command (unknown command, bad syntax, no privilege)."""


class ExecRefused(polling.SessionBroken):
    """The device refused an exec request (SSH ``exec`` channel request failed)."""


class PrivilegeError(polling.DeviceError):
    """``enable`` failed: no secret configured, a wrong secret, or still at an unprivileged prompt."""


class CliSession:
    def __init__(self, conn: asyncssh.SSHClientConnection, platform: ModuleType, opts: SshOptions,
                 shell: bool, enable_secret: str | None = None) -> None:
        self.conn = conn
        self.platform = platform
        self.opts = opts
        self.shell = shell
        self._secret = enable_secret
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None  # the shell
        self._inbox: sshconn.Inbox | None = None  # what the shell printed, not yet read
        self._prompt = b""
        self._lock = asyncio.Lock()  # one command at a time in a shell
        self._chosen: dict[str, int] = {}  # command name -> the variant the device accepted this session

    @property
    def prompt(self) -> str:
        return self._prompt.decode(errors="replace")

    async def open(self, probe: bool = True) -> None:
        if not self.shell:
            if probe:
                await self._probe_exec()
            return
        async with asyncio.timeout(self.opts.timeout_s):
            self._chan, self._inbox = await sshconn.open_channel(self.conn, self.opts.max_output, term_type="vt100",
                                                                 term_size=(511, 48))
            banner = await self._read_until(None)
        self._prompt = self._learn(banner)
        if getattr(self.platform, "ENABLE", False) and self._prompt.rstrip().endswith(b">"):
            await self._enable()
        for cmd in self.platform.PAGING_OFF:
            try:
                await self.command(cmd)
            except CommandFailed as e:  # a paging command this image does not know: long outputs still work
                log.debug("paging command refused: %s", e)

    async def _probe_exec(self) -> None:
        """One harmless exec request at login, so a device that refuses exec is known before any poll."""
        probe = self.platform.PAGING_OFF[0] if self.platform.PAGING_OFF else "show version"
        async with asyncio.timeout(self.opts.timeout_s):
            try:
                await self._exec(probe)
            except CommandFailed:
                pass  # the request was accepted; the command's answer does not matter

    @staticmethod
    def _learn(text: bytes) -> bytes:
        m = _PROMPT.search(text)
        assert m is not None  # _read_until(None) returns only once the prompt pattern matched
        return m.group(1).lstrip()

    async def _enable(self) -> None:
        assert self._chan is not None
        async with asyncio.timeout(self.opts.timeout_s), self._lock:
            self._chan.write(b"enable\n")
            out = await self._read_until(None, password_prompt=True)
            if _PASSWORD.search(out[-100:]):
                if not self._secret:
                    raise PrivilegeError(f"prompt {self.prompt!r}: `enable` asks for a password and the credential "
                                         "has no enable_secret")
                self._chan.write(self._secret.encode() + b"\n")  # never echoed, never logged
                out = await self._read_until(None, password_prompt=True)
                if _PASSWORD.search(out[-100:]):
                    raise PrivilegeError(f"prompt {self.prompt!r}: `enable` refused the enable_secret")
        prompt = self._learn(out)
        if prompt.rstrip().endswith(b">"):
            first = out.decode(errors="replace").replace("\r", "").split("\n")[1:2]
            raise PrivilegeError(f"`enable` left the prompt at {prompt.decode(errors='replace')!r}"
                                 + (f": {first[0][:120]}" if first and first[0].strip() else ""))
        self._prompt = prompt

    async def command(self, cmd: str) -> str:
        if not self.shell:
            async with asyncio.timeout(self.opts.timeout_s):
                raw = await self._exec(cmd)
        else:
            # the read is bounded by the shell's own timer (Inbox.until); waiting for the lock is bounded by
            # the command that holds it (its timeout ends the session)
            async with self._lock:
                raw = await self._shell_command(cmd)
        text = raw.replace(b"\r", b"").decode("utf-8", errors="replace")  # \r\n -> \n, stray \r dropped
        if parsers.is_error(self.platform, text):
            raise CommandFailed(f"{cmd!r}: {text.strip().splitlines()[0][:200]}")
        return text

    async def run(self, command: parsers.Command) -> list[wire.Sample]:
        """The samples of one command: its first variant the device accepts (remembered for the session)."""
        errors = []
        start = self._chosen.get(command.name, 0)
        for i, v in enumerate(command.variants[start:], start):
            last = i == len(command.variants) - 1
            try:
                samples = v.parse(await self.command(v.command), time.time_ns())
            except CommandFailed as e:
                errors.append(str(e))
                if last:
                    raise CommandFailed("; ".join(errors)) from None
                continue
            except parsers.ParseError as e:
                if v.json and not last:  # the device took "| json" but did not print JSON: use the text variant
                    errors.append(str(e))
                    continue
                raise
            self._chosen[command.name] = i
            return samples
        raise CommandFailed("; ".join(errors))  # not reached: the last variant returns or raises

    async def poll(self, groups: set[str]) -> list[wire.Sample]:
        """Every command of ``groups``; raises :class:`polling.PartialPoll` carrying what did parse when any
        command failed (a timeout or a broken session still ends the session)."""
        samples: list[wire.Sample] = []
        failures: dict[str, str] = {}
        for group in sorted(groups):
            for cmd in self.platform.COMMANDS.get(group, []):
                try:
                    samples += await self.run(cmd)
                except polling.SessionBroken:
                    raise
                except polling.DeviceError as e:
                    failures[cmd.name] = str(e)
        if failures:
            raise polling.PartialPoll(samples, failures)
        return samples

    async def _exec(self, cmd: str) -> bytes:
        try:
            chan, inbox = await sshconn.open_channel(self.conn, self.opts.max_output, command=cmd)
        except asyncssh.ChannelOpenError as e:
            if e.code == asyncssh.OPEN_REQUEST_SESSION_FAILED:  # the channel opened, the exec request was refused
                raise ExecRefused(f"the device refused an exec request ({e.reason})") from None
            raise  # a lost connection: the session ends and reconnects
        try:
            chan.write_eof()
            try:
                await inbox.until(lambda: inbox.closed)  # the command's output ends when its channel closes
            except sshconn.OutputTooLarge:
                raise polling.DeviceError(f"{cmd!r}: output larger than {self.opts.max_output} bytes") from None
            out = inbox.take()
            if inbox.exit_status not in (0, None):
                first = out.decode(errors="replace").strip().splitlines()[:1]
                raise CommandFailed(f"{cmd!r}: exit status {inbox.exit_status}: {first[0][:200] if first else ''}")
            return out
        finally:
            chan.close()

    async def _shell_command(self, cmd: str) -> bytes:
        assert self._chan is not None
        self._chan.write(cmd.encode() + b"\n")
        out = await self._read_until(self._prompt, timeout_s=self.opts.timeout_s)
        out = out[: -len(self._prompt)]
        first, sep, rest = out.partition(b"\n")
        return rest if sep and cmd.encode() in first else out  # drop the terminal's echo of the command

    async def _read_until(self, prompt: bytes | None, password_prompt: bool = False,
                          timeout_s: float | None = None) -> bytes:
        """Read the shell until it ends with ``prompt`` at a line start (or any prompt when ``None``, or a
        password prompt when asked), within ``timeout_s`` when given."""
        inbox = self._inbox
        assert inbox is not None
        try:
            await inbox.until(lambda: _at_prompt(inbox.buf, prompt, password_prompt), timeout_s)
        except sshconn.OutputTooLarge:
            raise polling.SessionBroken(f"no prompt within {self.opts.max_output} bytes") from None
        except EOFError:
            raise EOFError("the shell closed") from None
        return inbox.take()


def _at_prompt(buf: bytearray, prompt: bytes | None, password_prompt: bool = False) -> bool:
    """Does what the shell printed so far end with ``prompt`` at a line start (any prompt when ``None``, or a
    password prompt when asked)? Only the tail is looked at: this runs on every arrival."""
    if prompt is None:
        tail = buf[-100:]
        return bool(_PROMPT.search(tail) or (password_prompt and _PASSWORD.search(tail)))
    return buf.endswith(prompt) and (len(buf) == len(prompt) or buf[-len(prompt) - 1] in b"\r\n")


def use_shell(device: wire.Device, platform: ModuleType) -> bool:
    mode = device.tags.get("ssh_mode", "")
    return mode == "shell" if mode in ("shell", "exec") else platform.SHELL


async def open_cli(device: wire.Device, credential: Credential | None, opts: SshOptions,
                   shell: bool | None = None, probe: bool = True,
                   keepalive_s: float | None = None) -> tuple[asyncssh.SSHClientConnection, CliSession]:
    """A connected, opened CLI session. In exec mode one exec request is probed at login (unless
    ``probe`` is false: the caller handles :class:`ExecRefused` itself); a refusal falls back to a new
    connection with a shell (many devices accept one channel per connection), unless the device is
    tagged ``ssh_mode=exec``; then the error says what to change."""
    platform = parsers.platform(device.platform)
    if shell is None:
        shell = use_shell(device, platform)
    secret = credential.enable_secret if credential else None
    conn = await sshconn.connect(device, credential, opts, keepalive_s)
    try:
        cli = CliSession(conn, platform, opts, shell, secret)
        await cli.open(probe)
        return conn, cli
    except ExecRefused as e:
        await sshconn.close(conn)
        refused_exec(device, e)
        return await open_cli(device, credential, opts, shell=True, keepalive_s=keepalive_s)
    except BaseException:
        await sshconn.close(conn)
        raise


def refused_exec(device: wire.Device, e: ExecRefused) -> None:
    """The device refused an exec request: log the switch to a shell, or raise what to change."""
    if device.tags.get("ssh_mode") == "exec":
        raise ExecRefused(f"{e}; remove the tag ssh_mode=exec (or tag ssh_mode=shell) to use a shell") from None
    log.info("%s: %s; using an interactive shell (tag ssh_mode=shell to say so)", device.name, e)


def collector(opts: SshOptions | None = None) -> Collector:
    opts = opts or SshOptions()

    async def run(ctx: CollectorContext) -> None:
        dev = ctx.device
        state = {"shell": use_shell(dev, parsers.platform(dev.platform)), "fallback": False}

        @asynccontextmanager
        async def session() -> AsyncIterator[polling.Poll]:
            # no exec probe: the first command finds out, so a device that accepts exec pays nothing extra
            conn, cli = await open_cli(dev, ctx.credential, opts, shell=state["shell"] or None, probe=False,
                                       keepalive_s=sshconn.polling_keepalive_s(dev, opts))
            try:
                yield cli.poll
            except BaseExceptionGroup as eg:  # the polls run in a TaskGroup
                refused = eg.subgroup(ExecRefused)
                if refused is None or cli.shell:
                    raise
                refused_exec(dev, refused.exceptions[0])  # type: ignore[arg-type]
                # learned once: this session ends quietly and every reconnect goes straight to a shell
                state.update(shell=True, fallback=True)
            finally:
                await sshconn.close(conn)

        def what() -> str:
            mode = "shell (exec refused)" if state["fallback"] else "shell" if state["shell"] else "exec"
            return f"ssh {mode} {dev.address}:{dev.port}"

        await polling.supervise(ctx, session, what)

    return run


run = collector()
