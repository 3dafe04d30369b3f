"""The SSH CLI collector against the simulator's real SSH servers: every platform in exec and shell mode,
every fault, host-key policies, and a bad device beside a good one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import msgspec
import pytest
from support.ports import free_port
from support.recorder import Recorder, collecting, device
from support.waits import eventually
from swtel.agent.collectors import paths, ssh, sshconn
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.collectors.sshconn import SshOptions
from swtel.agent.sim.model import COUNTERS, Faults, SimDevice
from swtel.agent.sim.ssh_server import serve_ssh
from swtel.shared import wire

LAB = SshOptions(host_key_policy="off", timeout_s=1.0, keepalive_s=0)


# IOS's show interfaces prints no output broadcast/multicast figures: no out-unicast/out-multicast there
NOT_PRINTED = {"ios": {"out-unicast-pkts", "out-multicast-pkts"}}


def check_values(rec: Recorder, sim: SimDevice) -> None:
    values = rec.values()
    for i, name in enumerate(sim.ifnames):
        assert values[paths.oper_status(name)] in ("UP", "DOWN")
        for leaf in COUNTERS:
            if leaf not in NOT_PRINTED.get(sim.platform, set()):
                assert isinstance(values[paths.counter(name, leaf)], int)
    assert 0 <= values[paths.CPU] <= 100
    assert values[paths.MEM_PHYSICAL] == 16 * 1024**3
    assert 0 < values[paths.MEM_UTILIZED] < values[paths.MEM_PHYSICAL]
    assert any(p.startswith("/components/component[name=") for p in values)


def in_octets(rec: Recorder, ifname: str) -> list[int]:
    p = paths.counter(ifname, "in-octets")
    return [s.value for sub, samples in rec.batches if sub == "interfaces" for s in samples if s.path == p]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["exec", "shell"])
@pytest.mark.parametrize("platform", ["eos", "nxos", "junos", "iosxr", "ios", "generic"])
async def test_every_platform_in_every_mode(platform: str, mode: str) -> None:
    sim = SimDevice(f"sw-{platform}", platform=platform, interfaces=3)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device(sim.name, servers.ports[0], "ssh", platform, interval=0.2, tags={"ssh_mode": mode})
        async with collecting(ssh.collector(LAB), dev) as (rec, ctx):
            await rec.wait_batches(3, "interfaces")
            await rec.wait_batches(1, "system")
            check_values(rec, sim)
            octets = in_octets(rec, sim.ifnames[0])
            assert octets == sorted(octets)  # counters only grow
            assert rec.kinds() == ["session_up"] and mode in rec.events[0][1]
            assert ctx.stats.status == "collecting" and ctx.stats.errors == 0
            assert {s.path for _, b in rec.batches for s in b if "/system" in s.path or "/components" in s.path} \
                and all(sub == "system" for sub, b in rec.batches if any(s.path == paths.CPU for s in b))
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_keyed_subscription_paths_select_just_those_samples() -> None:
    sim = SimDevice("sw", platform="eos", interfaces=3)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        want = "/interfaces/interface[name=Ethernet2]/state/counters/in-octets"
        dev = device("sw", servers.ports[0], "ssh", "eos", paths={"one": [want], "mem": ["/system/memory/state"]})
        async with collecting(ssh.collector(LAB), dev) as (rec, _):
            await rec.wait_batches(2, "one")
            await rec.wait_batches(1, "mem")
            assert set(rec.values("one")) == {want}
            assert set(rec.values("mem")) == {paths.MEM_PHYSICAL, paths.MEM_UTILIZED}
    finally:
        await servers.close()


async def wait_status(ctx: CollectorContext, status: str, errors: int = 1) -> None:
    async def reached() -> bool:
        return ctx.stats.status == status and ctx.stats.errors >= errors

    await eventually(reached, timeout=15, what=f"status {status!r} after {errors} error(s); stats: {ctx.stats}")


FAULTS = {  # fault, status, event, failures to wait for (auth retries back off from 5 s)
    "wrong_password": (Faults(wrong_password=True), "auth_failed", "auth_failed", 1),
    "hang": (Faults(hang=True), "timeout", "timeout", 2),
    "slow_beyond_timeout": (Faults(delay_s=3.0), "timeout", "timeout", 2),
    "garbage": (Faults(garbage=True), "error", "error", 2),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["exec", "shell"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_faults_give_one_clear_status_and_one_event(fault: str, mode: str) -> None:
    faults, status, kind, failures = FAULTS[fault]
    sim = SimDevice("bad", platform="eos", interfaces=2, faults=faults)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device("bad", servers.ports[0], "ssh", "eos", interval=0.2, tags={"ssh_mode": mode})
        async with collecting(ssh.collector(LAB), dev) as (rec, ctx):
            await wait_status(ctx, status, errors=failures)  # failed (repeatedly) ...
            assert rec.kinds() == [kind], rec.events  # ... and said so once
            assert rec.batches == []
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_a_slow_device_within_the_timeout_is_collected() -> None:
    sim = SimDevice("slow", platform="nxos", interfaces=2, faults=Faults(delay_s=0.2))
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        async with collecting(ssh.collector(LAB), device("slow", servers.ports[0], "ssh", "nxos")) as (rec, ctx):
            await rec.wait_batches(2, "interfaces")
            assert ctx.stats.status == "collecting"
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_dropped_session_reconnects_and_collection_goes_on() -> None:
    sim = SimDevice("flaky", platform="eos", interfaces=2, faults=Faults(drop_stream_after_s=0.6))
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device("flaky", servers.ports[0], "ssh", "eos", interval=0.1)
        async with collecting(ssh.collector(LAB), dev) as (rec, _):
            async def reconnected() -> bool:
                return rec.kinds().count("session_up") >= 2

            await eventually(reconnected, timeout=15, what=f"a reconnect; events {rec.events}")
            assert "session_down" in rec.kinds()
            n = len(rec.batches)
            await rec.wait_batches(n + 1)
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_nothing_listening_is_unreachable() -> None:
    async with collecting(ssh.collector(LAB), device("gone", free_port(), "ssh")) as (rec, ctx):
        await wait_status(ctx, "unreachable")
        await rec.wait_event("error")


@pytest.mark.asyncio
async def test_a_platform_mismatch_is_a_command_error() -> None:
    sim = SimDevice("eos-really", platform="eos", interfaces=2)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device("eos-really", servers.ports[0], "ssh", "junos", interval=0.2)  # inventory says junos
        async with collecting(ssh.collector(LAB), dev) as (rec, ctx):
            await wait_status(ctx, "error")
            assert "show interfaces extensive" in ctx.stats.last_error or "show chassis" in ctx.stats.last_error
            assert rec.kinds() == ["error"]
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_bad_devices_do_not_disturb_a_good_one() -> None:
    sims = [SimDevice("good", platform="eos", interfaces=4),
            SimDevice("hang", platform="eos", interfaces=4, faults=Faults(hang=True)),
            SimDevice("junk", platform="eos", interfaces=4, faults=Faults(garbage=True)),
            SimDevice("locked", platform="eos", interfaces=4, faults=Faults(wrong_password=True)),
            SimDevice("flaky", platform="eos", interfaces=4, faults=Faults(drop_stream_after_s=0.3))]
    servers = await serve_ssh(sims, "127.0.0.1", [0] * len(sims))
    col = ssh.collector(LAB)
    try:
        devs = [device(s.name, p, "ssh", "eos", interval=0.2) for s, p in zip(sims, servers.ports, strict=True)]
        async with collecting(col, devs[0]) as (good, good_ctx), collecting(col, devs[1]) as (_, hang_ctx), \
                collecting(col, devs[2]) as (_, junk_ctx), collecting(col, devs[3]) as (_, locked_ctx), \
                collecting(col, devs[4]) as (flaky, _):
            await wait_status(hang_ctx, "timeout", 1)
            await wait_status(junk_ctx, "error", 1)
            await wait_status(locked_ctx, "auth_failed", 1)
            await flaky.wait_event("session_down")
            loop = asyncio.get_running_loop()
            t0, n0 = loop.time(), len(good.batches)
            await good.wait_batches(n0 + 8, "interfaces")
            assert loop.time() - t0 < 4.0  # 8 polls at 0.2 s: not held up by its neighbours
            assert good.kinds() == ["session_up"] and good_ctx.stats.errors == 0
    finally:
        await servers.close()


# ---- host-key policy ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_known_hosts_policy_verifies_and_refuses(tmp_path: Path) -> None:
    sim = SimDevice("sw", platform="generic", interfaces=1)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        kh = tmp_path / "known_hosts"
        kh.write_text(servers.known_hosts())
        opts = SshOptions(known_hosts=str(kh), timeout_s=2)
        async with collecting(ssh.collector(opts), device("sw", servers.ports[0], "ssh")) as (rec, ctx):
            await rec.wait_batches(1)
        kh.write_text("")
        async with collecting(ssh.collector(opts), device("sw", servers.ports[0], "ssh")) as (rec, ctx):
            await wait_status(ctx, "error")
            assert "host key not verifiable" in ctx.stats.last_error and rec.batches == []
        missing = SshOptions(known_hosts=str(tmp_path / "absent"), timeout_s=2)
        async with collecting(ssh.collector(missing), device("sw", servers.ports[0], "ssh")) as (rec, ctx):
            await wait_status(ctx, "error")
            assert "absent" in ctx.stats.last_error and "No such file" in ctx.stats.last_error
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_accept_new_trusts_on_first_use_then_verifies(tmp_path: Path) -> None:
    sim = SimDevice("sw", platform="generic", interfaces=1)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    port = servers.ports[0]
    try:
        kh = tmp_path / "ssh" / "known_hosts"
        opts = SshOptions(host_key_policy="accept-new", known_hosts=str(kh), timeout_s=2)
        async with collecting(ssh.collector(opts), device("sw", port, "ssh")) as (rec, _):
            await rec.wait_batches(1)
        assert kh.read_text() == servers.known_hosts()
        # a changed key for a stored host is refused
        kh2 = tmp_path / "other_known_hosts"
        wrong = " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])
        kh2.write_text(f"[127.0.0.1]:{port} {wrong}\n")
        opts2 = SshOptions(host_key_policy="accept-new", known_hosts=str(kh2), timeout_s=2)
        async with collecting(ssh.collector(opts2), device("sw", port, "ssh")) as (rec, ctx):
            await wait_status(ctx, "error")
            assert "host key not verifiable" in ctx.stats.last_error
        assert kh2.read_text().count("\n") == 1  # nothing appended over a changed key
    finally:
        await servers.close()


# ---- cipher --------------------------------------------------------------------------------------------


class _AnyPassword(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return True


@pytest.mark.asyncio
async def test_aes_gcm_where_offered_and_a_server_without_it_still_connects() -> None:
    # asyncssh prefers chacha20-poly1305 (four cipher contexts per packet in Python); the collector asks
    # for AES-GCM first (one AEAD call per packet) and keeps the rest of asyncssh's list for other servers
    sim = SimDevice("sw", platform="eos", interfaces=1)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        conn = await sshconn.connect(device("sw", servers.ports[0], "ssh", "eos"), Credential("admin", "admin"), LAB)
        try:
            assert (conn.get_extra_info("send_cipher"), conn.get_extra_info("recv_cipher")) == (
                "aes128-gcm@openssh.com", "aes128-gcm@openssh.com")
            assert conn.get_extra_info("send_compression") == "none"
        finally:
            await sshconn.close(conn)
    finally:
        await servers.close()
    for only in ("chacha20-poly1305@openssh.com", "aes256-ctr"):  # an asyncssh server offering one cipher
        acceptor = await asyncssh.listen("127.0.0.1", 0, server_factory=_AnyPassword, encryption_algs=[only],
                                         server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")])
        try:
            conn = await sshconn.connect(device("old", acceptor.get_port(), "ssh"), Credential("admin", "x"), LAB)
            assert conn.get_extra_info("send_cipher") == only
            await sshconn.close(conn)
        finally:
            acceptor.close()
            await acceptor.wait_closed()


def test_unknown_host_key_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="known_hosts, accept-new, off"):
        SshOptions(host_key_policy="yes")


@pytest.mark.asyncio
async def test_a_wrong_credential_in_the_inventory_is_auth_failed() -> None:
    sim = SimDevice("sw", platform="generic", interfaces=1)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        async with collecting(ssh.collector(LAB), device("sw", servers.ports[0], "ssh"),
                              Credential("admin", "wrong")) as (rec, ctx):
            await wait_status(ctx, "auth_failed")
            assert rec.kinds() == ["auth_failed"]
    finally:
        await servers.close()


def test_session_type_per_platform_and_tag() -> None:
    from swtel.agent.collectors import parsers

    assert ssh.use_shell(device("x", 1, "ssh", "iosxr"), parsers.platform("iosxr"))
    assert not ssh.use_shell(device("x", 1, "ssh", "eos"), parsers.platform("eos"))
    assert ssh.use_shell(device("x", 1, "ssh", "eos", tags={"ssh_mode": "shell"}), parsers.platform("eos"))
    assert not ssh.use_shell(device("x", 1, "ssh", "iosxr", tags={"ssh_mode": "exec"}), parsers.platform("iosxr"))


# ---- privilege, text-only CLIs --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("platform", ["ios", "eos"])
async def test_enable_with_the_credentials_secret_then_collect_and_back_up(
        platform: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from swtel.agent.jobs import backup

    caplog.set_level(logging.DEBUG)

    sim = SimDevice(f"sw-{platform}", platform=platform, interfaces=2, enable_secret="s3cret-en")
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device(sim.name, servers.ports[0], "ssh", platform, interval=0.2, tags={"ssh_mode": "shell"})
        cred = Credential("admin", "admin", enable_secret="s3cret-en")
        assert "s3cret" not in repr(cred)
        async with collecting(ssh.collector(LAB), dev, cred) as (rec, ctx):
            await rec.wait_batches(2, "interfaces")
            await rec.wait_batches(1, "system")
            check_values(rec, sim)
            assert ctx.stats.errors == 0
        # `show running-config` is refused at "sw>": the backup works only because `enable` succeeded
        fmt, text = await backup.fetch_ssh(CollectorContext(dev, 1, Recorder(), cred), LAB)
        assert (fmt, text) == ("text", sim.config_text)
        assert "s3cret-en" not in caplog.text  # never logged, at any level
    finally:
        await servers.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("secret,says", [(None, "no enable_secret"),
                                         ("wrong", "left the prompt at 'sw>': % Access denied")])
async def test_enable_without_or_with_a_wrong_secret_is_one_clear_error(secret: str | None, says: str) -> None:
    sim = SimDevice("sw", platform="ios", interfaces=1, enable_secret="right")
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device("sw", servers.ports[0], "ssh", "ios", interval=0.2, tags={"ssh_mode": "shell"})
        cred = Credential("admin", "admin", enable_secret=secret)
        async with collecting(ssh.collector(LAB), dev, cred) as (rec, ctx):
            await wait_status(ctx, "error", errors=2)
            assert says in ctx.stats.last_error and "right" not in ctx.stats.last_error
            assert rec.kinds() == ["error"] and rec.batches == []
    finally:
        await servers.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["exec", "shell"])
async def test_a_text_only_eos_is_collected_from_text(mode: str) -> None:
    sim = SimDevice("old-eos", platform="eos", interfaces=3, cli_json=False)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device(sim.name, servers.ports[0], "ssh", "eos", interval=0.2, tags={"ssh_mode": mode})
        async with collecting(ssh.collector(LAB), dev) as (rec, ctx):
            await rec.wait_batches(3, "interfaces")
            await rec.wait_batches(1, "system")
            check_values(rec, sim)
            # "| json" was refused once per command and the text variant remembered: no error, no event
            assert ctx.stats.errors == 0 and rec.kinds() == ["session_up"]
            assert paths.temperature("Supervisor 1/Cpu temp sensor") in rec.values()
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_a_device_that_refuses_exec_is_collected_through_a_shell() -> None:
    sim = SimDevice("shell-only", platform="nxos", interfaces=2, faults=Faults(no_exec=True))
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device(sim.name, servers.ports[0], "ssh", "nxos", interval=0.2)  # exec by default
        async with collecting(ssh.collector(LAB), dev) as (rec, ctx):
            await rec.wait_batches(3, "interfaces")
            check_values(rec, sim)
            assert rec.kinds() == ["session_up"] and "shell (exec refused)" in rec.events[0][1]
            assert ctx.stats.errors == 0
        tagged = device(sim.name, servers.ports[0], "ssh", "nxos", interval=0.2, tags={"ssh_mode": "exec"})
        async with collecting(ssh.collector(LAB), tagged) as (rec, ctx):
            await wait_status(ctx, "error")
            assert "refused an exec request" in ctx.stats.last_error and "ssh_mode=exec" in ctx.stats.last_error
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_a_text_only_nxos_gives_interfaces_cpu_and_temperature_from_text() -> None:
    sim = SimDevice("old-nxos", platform="nxos", interfaces=3, cli_json=False)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    try:
        dev = device(sim.name, servers.ports[0], "ssh", "nxos", interval=0.2)
        async with collecting(ssh.collector(LAB), dev) as (rec, ctx):
            await rec.wait_batches(2, "interfaces")
            await rec.wait_batches(1, "system")
            values = rec.values()
            for i, name in enumerate(sim.ifnames):
                assert values[paths.oper_status(name)] in ("UP", "DOWN")
                assert all(isinstance(values[paths.counter(name, leaf)], int) for leaf in COUNTERS)
            assert 0 <= values[paths.CPU] <= 100 and paths.temperature("FRONT") in values
            assert paths.MEM_PHYSICAL not in values  # NX-OS text has no memory reading here (documented)
            assert ctx.stats.errors == 0 and rec.kinds() == ["session_up"]
    finally:
        await servers.close()


# ---- reading a channel: one wakeup per answer, the prompt seen whole -------------------------------------


@pytest.mark.asyncio
async def test_a_shell_read_ends_at_the_whole_prompt_however_the_packets_split_it() -> None:
    """The reader is woken once, when what arrived ends with the prompt at a line start: not at the prompt's
    text inside the output, not at half a prompt (each ``data_received`` is one SSH packet)."""
    inbox = sshconn.Inbox(max_bytes=1 << 20)
    read = asyncio.create_task(inbox.until(lambda: ssh._at_prompt(inbox.buf, b"sw1#")))
    pieces = [b"show run\r\nhostname sw1#",  # the prompt's text, not at a line start
              b"\r\nbanner sw1# x\r\nend\r\nsw",  # the prompt's text mid-line, then half the prompt
              b"1"]
    for piece in pieces:
        inbox.data_received(piece, None)
        await asyncio.sleep(0)  # let the reader run if it was woken
        assert not read.done()
    inbox.data_received(b"#", None)
    await asyncio.wait_for(read, 5)
    assert inbox.take() == b"".join(pieces) + b"#" and not inbox.buf


@pytest.mark.asyncio
async def test_a_channel_reader_learns_of_an_overflow_or_a_close() -> None:
    inbox = sshconn.Inbox(max_bytes=10)
    read = asyncio.create_task(inbox.until(lambda: False))
    await asyncio.sleep(0)
    inbox.data_received(b"x" * 11, None)
    with pytest.raises(sshconn.OutputTooLarge):
        await asyncio.wait_for(read, 5)
    assert not inbox.buf  # what came over the limit is not kept
    inbox = sshconn.Inbox(max_bytes=10)
    read = asyncio.create_task(inbox.until(lambda: False))
    await asyncio.sleep(0)
    inbox.connection_lost(None)
    with pytest.raises(EOFError):
        await asyncio.wait_for(read, 5)
    inbox = sshconn.Inbox(max_bytes=10)
    inbox.data_received(b"done", None)  # already there before anyone waits
    await asyncio.wait_for(inbox.until(lambda: inbox.buf.endswith(b"done")), 5)


@pytest.mark.asyncio
async def test_each_shell_read_times_out_at_its_own_deadline_from_one_timer() -> None:
    """Reads in a row share one timer: a read answered in time leaves it armed; the next read is timed
    from its own start, not the earlier read's; a read with no timeout is never cut short by it."""
    loop = asyncio.get_running_loop()
    inbox = sshconn.Inbox(max_bytes=1 << 20)
    inbox.data_received(b"sw1#", None)
    await inbox.until(lambda: inbox.buf.endswith(b"sw1#"), timeout_s=0.3)  # answered: the timer stays armed
    inbox.take()
    timer = inbox._timer
    assert timer is not None
    await asyncio.sleep(0.15)
    t0 = loop.time()
    with pytest.raises(TimeoutError, match=r"within 0\.45 s"):  # this read's timeout, not the first read's
        await inbox.until(lambda: False, timeout_s=0.45)
    assert loop.time() - t0 >= 0.45 - 0.01  # not at the first read's deadline, 0.15 s in
    assert inbox._timer is None  # the first read's timer moved to this read's deadline, and fired
    inbox.data_received(b"x", None)
    await inbox.until(lambda: inbox.buf.endswith(b"x"), timeout_s=0.1)
    untimed = asyncio.create_task(inbox.until(lambda: inbox.buf.endswith(b"sw1#")))
    await asyncio.sleep(0.2)  # past the timed read's deadline: its timer must not end this read
    assert not untimed.done()
    inbox.data_received(b"sw1#", None)
    await asyncio.wait_for(untimed, 5)


def test_keepalives_only_for_devices_polled_less_often_than_the_keepalive() -> None:
    opts = SshOptions(keepalive_s=15.0)
    assert sshconn.polling_keepalive_s(device("x", 1, "ssh", interval=10), opts) == 0  # the polls prove it alive
    assert sshconn.polling_keepalive_s(device("x", 1, "ssh", interval=15), opts) == 0
    assert sshconn.polling_keepalive_s(device("x", 1, "ssh", interval=60), opts) == 15.0
    # only subscriptions this collector polls count: one with no known path does not keep the session alive
    dev = device("x", 1, "ssh", interval=60)
    other = wire.Subscription("x", ["/unknown"], interval_s=1)
    dev = msgspec.structs.replace(dev, subscriptions=[*dev.subscriptions, other])
    assert sshconn.polling_keepalive_s(dev, opts) == 15.0
    assert sshconn.polling_keepalive_s(device("x", 1, "ssh", interval=60), SshOptions(keepalive_s=0)) == 0
