"""``bench/agent/ssh.py --server openssh``: the bench's CLI emulator behind a real OpenSSH sshd answers the
collector, in a shell (PTY echo, prompt) and in exec, with exactly the simulator's output it was rendered
from, so the bench's parse-only baseline parses the same text the collector receives."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from support.procs import stop_process
from support.sshd import SSHD
from swtel.agent.collectors import parsers, ssh, sshconn
from swtel.agent.collectors.base import Credential
from swtel.agent.collectors.sshconn import SshOptions
from swtel.agent.sim import cli
from swtel.agent.sim.model import SimDevice
from swtel.shared import wire

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.agent import ssh as bench  # noqa: E402

if not os.access(SSHD, os.X_OK):
    pytest.skip(f"{SSHD} is missing: apt-get install openssh-server", allow_module_level=True)

CMD = "show interfaces | json"


@pytest.fixture
def openssh():
    proc, tmp, peer = bench.start_openssh(4, "eos", 4)
    try:
        yield {**peer, "dir": tmp}
    finally:
        stop_process(proc, 5)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.asyncio
@pytest.mark.parametrize("shell", [True, False], ids=["shell", "exec"])
async def test_emulator_behind_sshd_answers_the_simulators_output(openssh: dict, shell: bool) -> None:
    dev = wire.Device(name="bench0", address="127.0.0.1", port=openssh["port"], protocol="ssh", platform="eos",
                      tags={"ssh_mode": "shell" if shell else "exec"}, subscriptions=[])
    opts = SshOptions(host_key_policy="known_hosts", known_hosts=openssh["known_hosts"], timeout_s=10, keepalive_s=0)
    conn, session = await ssh.open_cli(dev, Credential(openssh["user"], "", ssh_key=openssh["key"]), opts,
                                       shell=shell)
    try:
        with open(os.path.join(openssh["dir"], "cli.json")) as f:
            expected = json.load(f)["outputs"][CMD]  # rendered by the bench before sshd started
        mod = parsers.platform("eos")
        # the simulator's output (its counters move with time: compare what was measured, not the values)
        sim = cli.run(SimDevice("bench", platform="eos", interfaces=4), CMD)
        assert {s.path for s in mod.parse(CMD, expected, 1)} == {s.path for s in mod.parse(CMD, sim, 1)}
        if shell:
            assert session.prompt == "bench#"
        assert (await session.command(CMD)).strip() == expected.strip()
        assert mod.parse(CMD, await session.command(CMD), 1) == mod.parse(CMD, expected, 1) != []
        with pytest.raises(ssh.CommandFailed):
            await session.command("show no such thing")
    finally:
        await sshconn.close(conn)
