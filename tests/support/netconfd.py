"""yuma123's ``netconfd`` (Debian packages netconfd + netconfd-module-ietf-interfaces) behind a private
OpenSSH ``sshd``, both started on free loopback ports for one test and stopped after it.

The ``netconf`` subsystem runs ``netconf-subsystem``, which hands the session to netconfd over a unix
socket named per port (``--ncxserver-sockname=PORT@SOCKET``; netconfd is told the same port with
``--port``). The login is a key made for the test (the collector's credential ``ssh_key``), for the
user running the tests: no system account or password is touched. The Debian module package calls a
``get-interface-ipv4`` helper it does not ship; a stub on netconfd's PATH stands in for it (the tests
read no IPv4 data).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .ports import free_port
from .procs import stop_async_process
from .sshd import SSHD, SshdFiles, write_sshd
from .waits import eventually

NETCONFD = "/usr/sbin/netconfd"
SUBSYSTEM = "/usr/sbin/netconf-subsystem"
INSTALL = "apt-get install netconfd netconfd-module-ietf-interfaces openssh-server (.ci/run does)"


@dataclass
class Netconfd(SshdFiles):
    log: Path  # netconfd's own log


def _missing() -> str | None:
    for path in (NETCONFD, SUBSYSTEM, SSHD):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: {INSTALL}"
    if not any(Path(d).glob("libietf-interfaces.so*") for d in ("/usr/lib/x86_64-linux-gnu/yuma",
                                                                 "/usr/lib/aarch64-linux-gnu/yuma", "/usr/lib/yuma")):
        return f"netconfd's ietf-interfaces module is missing: {INSTALL}"
    return None


@contextlib.asynccontextmanager
async def netconfd(*modules: str) -> AsyncIterator[Netconfd]:
    """netconfd with ietf-interfaces (and ``modules``) behind sshd on 127.0.0.1:<free port>."""
    why = _missing()
    if why:
        pytest.skip(why)
    user = getpass.getuser()
    tmp = Path(tempfile.mkdtemp(prefix="swtel-ncd-", dir="/tmp"))  # short: a unix socket path lives here
    procs: list[asyncio.subprocess.Process] = []
    try:
        port = free_port()
        sock = tmp / "ncx.sock"
        (tmp / "bin").mkdir()
        stub = tmp / "bin" / "get-interface-ipv4"
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
        args = [NETCONFD, "--module=ietf-interfaces", *(f"--module={m}" for m in modules),
                f"--ncxserver-sockname={sock}", f"--port={port}", "--no-startup", f"--superuser={user}",
                f"--log={tmp / 'netconfd.log'}", "--log-level=info"]
        env = {**os.environ, "PATH": f"{tmp / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        procs.append(await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                          stderr=asyncio.subprocess.DEVNULL))

        async def listening() -> bool:
            if procs[0].returncode is not None:
                raise AssertionError(f"netconfd exited: {(tmp / 'netconfd.log').read_text()[-2000:]}")
            return sock.exists()

        await eventually(listening, timeout=15, what="netconfd's socket")

        files = write_sshd(tmp, port, f'Subsystem netconf "{SUBSYSTEM} --ncxserver-sockname={port}@{sock}"\n')
        procs.append(await asyncio.create_subprocess_exec(*files.command(),
                                                          stdout=asyncio.subprocess.DEVNULL,
                                                          stderr=asyncio.subprocess.PIPE))

        async def accepting() -> bool:
            if procs[1].returncode is not None:
                err = await procs[1].stderr.read() if procs[1].stderr else b""
                raise AssertionError(f"sshd exited: {err.decode()[-2000:]}")
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            w.close()
            return True

        await eventually(accepting, timeout=15, what="sshd to accept connections")
        yield Netconfd(**vars(files), log=tmp / "netconfd.log")
    finally:
        for proc in reversed(procs):
            await stop_async_process(proc, 5)
        shutil.rmtree(tmp, ignore_errors=True)


def proc_net_dev() -> dict[str, dict[str, int]]:
    """Counters per interface as the kernel shows them, named as ietf-interfaces names them."""
    rx = ("in-octets", "in-unicast-pkts", "in-errors", "in-discards", None, None, None, "in-multicast-pkts")
    tx = ("out-octets", "out-unicast-pkts", "out-errors", "out-discards")
    out: dict[str, dict[str, int]] = {}
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = [int(x) for x in rest.split()]
        row = {k: v for k, v in zip(rx, fields[:8]) if k}
        row.update(zip(tx, fields[8:12]))
        out[name.strip()] = row
    return out
