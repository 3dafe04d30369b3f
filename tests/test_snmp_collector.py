"""The SNMP collector against Debian's real snmpd on a free loopback port: values equal snmpget's, v2c and
v3 authPriv (SHA-256/AES), wrong community and wrong v3 user/key give clear statuses without a retry
storm (counted by snmpd itself), discovery facts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.recorder import collecting, device
from support.snmpd import COMMUNITY, V3_AUTH, V3_PRIV, V3_USER, Snmpd
from support.waits import eventually
from swtel.agent.collectors import paths, snmp
from swtel.agent.collectors import snmp_mibs as mib
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.jobs import discovery

V2C = Credential("", "", community=COMMUNITY)
V3 = Credential(V3_USER, "", auth_protocol="sha256", auth_password=V3_AUTH, priv_protocol="aes",
                priv_password=V3_PRIV)
SNMP_IN_BAD_COMMUNITY_NAMES = "1.3.6.1.2.1.11.4.0"
USM_UNKNOWN_USER_NAMES = "1.3.6.1.6.3.15.1.1.3.0"
USM_WRONG_DIGESTS = "1.3.6.1.6.3.15.1.1.5.0"


@pytest.fixture(scope="module")
def snmpd() -> Iterator[Snmpd]:
    agent = Snmpd().start()
    try:
        yield agent
    finally:
        agent.cleanup()


def snmp_device(agent: Snmpd, interval: float = 0.3, **tags: str):  # type: ignore[no-untyped-def]
    return device("snmpd", agent.port, "snmp", interval=interval, tags=tags)


@pytest.mark.asyncio
@pytest.mark.parametrize("cred", [V2C, V3], ids=["v2c", "v3-authPriv-sha256-aes"])
async def test_values_equal_snmpget(snmpd: Snmpd, cred: Credential) -> None:
    everything = device("snmpd", snmpd.port, "snmp", paths={"all": ["/interfaces", "/system", "/components"]})
    poller = await snmp.connect(everything, cred, snmp.SnmpOptions())
    indexes = snmpd.walk_indexes(mib.IF_NAME)
    assert indexes, "snmpd lists no interface"
    before = {i: snmpd.number(f"{mib.COUNTER_COLUMNS['in-octets'][0]}.{i}") for i in indexes}
    values = {s.path: s.value for s in await poller.poll({"interfaces", "system"})}
    after = {i: snmpd.number(f"{mib.COUNTER_COLUMNS['in-octets'][0]}.{i}") for i in indexes}
    assert poller.state.hc is True and poller.state.mem_source == "hr"
    for i in indexes:
        got = snmpd.get(f"{mib.IF_NAME}.{i}", f"{mib.IF_OPER_STATUS}.{i}", f"{mib.IF_HIGH_SPEED}.{i}",
                        f"{mib.COUNTER_COLUMNS['in-errors'][1]}.{i}")
        assert got is not None
        name = got[f"{mib.IF_NAME}.{i}"]
        assert values[paths.oper_status(name)] == mib.OPER_STATUS[int(got[f"{mib.IF_OPER_STATUS}.{i}"])]
        assert values[f"/interfaces/interface[name={name}]/ethernet/state/negotiated-port-speed"] == \
            mib.PORT_SPEEDS.get(int(got[f"{mib.IF_HIGH_SPEED}.{i}"]), "SPEED_UNKNOWN")
        assert values[paths.counter(name, "in-errors")] == int(got[f"{mib.COUNTER_COLUMNS['in-errors'][1]}.{i}"])
        # loopback counts our own packets: the poll's reading lies between snmpget's before and after
        assert before[i] <= values[paths.counter(name, "in-octets")] <= after[i]
    ram = [i for i in snmpd.walk_indexes(mib.HR_STORAGE_TYPE)
           if (snmpd.get(f"{mib.HR_STORAGE_TYPE}.{i}") or {}).get(f"{mib.HR_STORAGE_TYPE}.{i}", "").lstrip(".")
           == mib.HR_STORAGE_RAM]
    assert ram
    units, size = snmpd.number(f"{mib.HR_STORAGE_UNITS}.{ram[0]}"), snmpd.number(f"{mib.HR_STORAGE_SIZE}.{ram[0]}")
    assert values[paths.MEM_PHYSICAL] == units * size
    assert 0 <= values[paths.MEM_UTILIZED] <= values[paths.MEM_PHYSICAL]
    # a freshly started snmpd has no processor load yet (it averages over a minute): then no CPU sample
    assert poller.state.cpu_source in (None, "hr", "ucd")
    assert (paths.CPU in values) is (poller.state.cpu_source is not None)
    assert 0 <= values.get(paths.CPU, 0) <= 100


@pytest.mark.asyncio
async def test_collector_runs_and_reports_like_the_others(snmpd: Snmpd) -> None:
    from swtel.agent.collect import collector_for

    assert collector_for("snmp") is snmp.run  # what the agent runs for a held snmp device
    async with collecting(snmp.run, snmp_device(snmpd, snmp_max_repetitions="5"), V3) as (rec, ctx):
        await rec.wait_batches(2, "interfaces")
        await rec.wait_batches(1, "system")
        assert rec.kinds() == ["session_up"] and ctx.stats.status == "collecting"
        assert "v3 authPriv user monitor" in rec.events[0][1] and V3_AUTH not in repr(ctx)
        values = rec.values()
        assert paths.MEM_PHYSICAL in values
        # the default subscription keeps counters and oper-status, not descriptions or speeds
        assert not [p for p in values if p.endswith(("description", "negotiated-port-speed"))]


@pytest.mark.asyncio
async def test_wrong_community_is_a_timeout_without_a_retry_storm(snmpd: Snmpd) -> None:
    bad0 = snmpd.number(SNMP_IN_BAD_COMMUNITY_NAMES)
    dev = snmp_device(snmpd, snmp_timeout="300ms", snmp_retries="1")
    async with collecting(snmp.run, dev, Credential("", "", community="not-the-community")) as (rec, ctx):
        async def three_attempts() -> bool:
            return ctx.stats.errors >= 3

        await eventually(three_attempts, timeout=30, what=f"three failed attempts; stats {ctx.stats}")
        sent = snmpd.number(SNMP_IN_BAD_COMMUNITY_NAMES) - bad0
        errors = ctx.stats.errors
    assert ctx.stats.status == "timeout"
    assert "no answer in 0.3 s (2 tries); a wrong community gets no answer either" in ctx.stats.last_error
    # each attempt is one request and its one retry; the attempt in flight may have sent two more
    assert 2 * errors <= sent <= 2 * errors + 2, (sent, errors)
    assert rec.kinds() == ["timeout"]  # announced once, not once per retry
    assert rec.transitions() == ["device_down"]


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["unknown-user", "wrong-auth-key"])
async def test_wrong_v3_user_or_key_is_auth_failed(snmpd: Snmpd, case: str) -> None:
    counter = USM_UNKNOWN_USER_NAMES if case == "unknown-user" else USM_WRONG_DIGESTS
    c0 = snmpd.number(counter)
    cred = (Credential("nobody", "", auth_protocol="sha256", auth_password=V3_AUTH, priv_protocol="aes",
                       priv_password=V3_PRIV) if case == "unknown-user" else
            Credential(V3_USER, "", auth_protocol="sha256", auth_password="wrong-auth-pass", priv_protocol="aes",
                       priv_password=V3_PRIV))
    async with collecting(snmp.run, snmp_device(snmpd), cred) as (rec, ctx):
        await rec.wait_event("auth_failed")
        assert ctx.stats.status == "auth_failed"
        assert ctx.stats.last_error == "the device refused the SNMPv3 user or its authentication key"
        refused = snmpd.number(counter) - c0
        errors = ctx.stats.errors
    assert 1 <= refused <= errors + 1  # one refused request per attempt, no retries of a refusal
    assert "wrong-auth-pass" not in str(rec.events)


@pytest.mark.asyncio
async def test_discovery_facts_over_snmp(snmpd: Snmpd) -> None:
    ctx = CollectorContext(snmp_device(snmpd), 1, None, V2C)  # type: ignore[arg-type]
    facts = await discovery.discover(ctx, None)  # type: ignore[arg-type]
    want = snmpd.get(mib.SYS_NAME, mib.SYS_OBJECT_ID, mib.SYS_DESCR, mib.SYS_UPTIME)
    assert want is not None
    assert facts.hostname == want[mib.SYS_NAME] == "swtel-snmpd-test"
    assert facts.models == [want[mib.SYS_OBJECT_ID].lstrip(".")] and facts.vendor == "Net-SNMP"
    assert facts.os_version == want[mib.SYS_DESCR].splitlines()[0]
    assert abs(facts.uptime_s - int(want[mib.SYS_UPTIME]) // 100) <= 2  # type: ignore[operator]
    names = {f"{i}": (snmpd.get(f"{mib.IF_NAME}.{i}") or {}).get(f"{mib.IF_NAME}.{i}") for i in
             snmpd.walk_indexes(mib.IF_NAME)}
    assert [f.name for f in facts.interfaces] == list(names.values()) and not facts.errors


@pytest.mark.asyncio
async def test_no_credential_or_no_snmp_settings_is_auth_failed(snmpd: Snmpd) -> None:
    for cred, detail in ((None, "needs a credential reference"), (Credential("", "pw"), "neither an SNMP community")):
        rec_ctx = collecting(snmp.run, snmp_device(snmpd), cred)
        async with rec_ctx as (rec, ctx):
            ctx.credential = cred  # collecting() fills in a default login when given None
            await rec.wait_event("auth_failed")
            assert detail in ctx.stats.last_error
