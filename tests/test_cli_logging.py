"""Log levels: at INFO an SSH collector's per-command asyncssh chatter is silent; at DEBUG it is there.
Against the simulator's real SSH server and the real collector."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from support.recorder import collecting, device
from swtel.agent.collectors import ssh
from swtel.agent.collectors.sshconn import SshOptions
from swtel.agent.sim.model import SimDevice
from swtel.agent.sim.ssh_server import serve_ssh
from swtel.shared import logs

LAB = SshOptions(host_key_policy="off", timeout_s=1.0, keepalive_s=0)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    root = logging.getLogger()
    saved = (root.level, {n: logging.getLogger(n).level for n in ("asyncssh", "nats")})
    handler = Records()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


async def collect_a_while(batches: int) -> None:
    sim = SimDevice("sw-log", platform="eos", interfaces=2)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device(sim.name, servers.ports[0], "ssh", "eos", interval=0.1)
        async with collecting(ssh.collector(LAB), dev) as (rec, _):
            await rec.wait_batches(batches, "interfaces")
    finally:
        await servers.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("level", "chatter"), [("INFO", False), ("WARNING", False), ("DEBUG", True)])
async def test_asyncssh_chatter_only_at_debug(records: Records, level: str, chatter: bool) -> None:
    logs.setup(level)
    await collect_a_while(4)
    ssh_lines = [r for r in records.records if r.name.startswith("asyncssh")]
    assert bool(ssh_lines) is chatter, [r.getMessage() for r in ssh_lines[:5]]
    assert all(r.levelno >= getattr(logging, level) for r in records.records)


def test_log_level_is_checked() -> None:
    assert logs.check_level(" debug ") == "DEBUG"
    with pytest.raises(ValueError, match="log level 'verbose' is unknown; use one of DEBUG, INFO, WARNING, ERROR"):
        logs.check_level("verbose")
