"""The alert engine against a real PostgreSQL, fed by LiveSource with values we control over (simulated) time."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from support.alertdb import alert_pool, states, transitions
from swtel.agent.sim.model import Faults, SimDevice
from swtel.hub.alerts import db
from swtel.hub.alerts.engine import Engine
from swtel.hub.alerts.rules import Rule
from swtel.hub.alerts.sources import LiveSource
from swtel.shared import wire

T0 = 1_800_000_000.0
ERR = "/interfaces/interface[name=Ethernet1]/state/counters/in-errors"
ERR_ANY = "/interfaces/interface[name=*]/state/counters/in-errors"
CPU = "/system/cpus/cpu[index=0]/state/total/instant"


def dev(name: str, **tags: str) -> wire.Device:
    return wire.Device(name=name, address="127.0.0.1", port=9339, protocol="gnmi", tags=tags)


async def add(pool: asyncpg.Pool, **kw) -> Rule:
    kw.setdefault("name", "r1")
    async with pool.acquire() as conn:
        if kw.get("channels"):
            for ch in kw["channels"]:
                await db.add_channel(conn, ch, "webhook", {"url": "http://127.0.0.1:9/hook"})
        return await db.add_rule(conn, Rule(**kw))


async def outbox_kinds(pool: asyncpg.Pool) -> list[str]:
    return [r["kind"] for r in await pool.fetch("SELECT kind FROM alert_outbox ORDER BY id")]


@pytest.mark.asyncio
async def test_above_waits_for_duration_then_fires_and_resolves(database_url: str) -> None:
    src = LiveSource([dev("sw1"), dev("sw2")])
    async with alert_pool(database_url) as pool:
        await add(pool, device="sw1", path=CPU, condition="above", threshold=90, for_s=60, channels=["hook"])
        eng = Engine(pool, src)
        src.observe("sw1", CPU, 50, T0)
        src.observe("sw2", CPU, 99, T0)  # not selected: the rule names sw1 only
        await eng.evaluate_once(T0)
        assert await states(pool) == {}, "healthy series get no instance row"
        src.observe("sw1", CPU, 95, T0 + 10)
        await eng.evaluate_once(T0 + 10)
        assert await states(pool) == {("sw1", CPU): "pending"}
        await eng.evaluate_once(T0 + 40)  # held 30 s of 60: still pending
        assert await states(pool) == {("sw1", CPU): "pending"}
        await eng.evaluate_once(T0 + 70)
        assert await states(pool) == {("sw1", CPU): "firing"}
        await eng.evaluate_once(T0 + 80)  # still true: nothing new
        src.observe("sw1", CPU, 20, T0 + 90)
        await eng.evaluate_once(T0 + 90)
        assert await transitions(pool) == [("sw1", CPU, "ok", "pending"), ("sw1", CPU, "pending", "firing"),
                                           ("sw1", CPU, "firing", "resolved")]
        assert await outbox_kinds(pool) == ["firing", "resolved"]


@pytest.mark.asyncio
async def test_pending_that_stops_holding_goes_back_to_ok_without_notifying(database_url: str) -> None:
    src = LiveSource([dev("sw1")])
    async with alert_pool(database_url) as pool:
        await add(pool, device="sw1", path=CPU, condition="below", threshold=5, for_s=60, channels=["hook"])
        eng = Engine(pool, src)
        src.observe("sw1", CPU, 1, T0)
        await eng.evaluate_once(T0)
        src.observe("sw1", CPU, 50, T0 + 30)
        await eng.evaluate_once(T0 + 30)
        src.observe("sw1", CPU, 2, T0 + 40)
        await eng.evaluate_once(T0 + 40)
        await eng.evaluate_once(T0 + 100)
        src.observe("sw1", CPU, 40, T0 + 110)
        await eng.evaluate_once(T0 + 110)
        assert [t[2:] for t in await transitions(pool)] == [("ok", "pending"), ("pending", "ok"), ("ok", "pending"),
                                                             ("pending", "firing"), ("firing", "resolved")]
        assert await outbox_kinds(pool) == ["firing", "resolved"]


@pytest.mark.asyncio
async def test_tag_selection_and_wildcard_path_make_one_instance_per_series(database_url: str) -> None:
    e2 = ERR.replace("Ethernet1", "Ethernet2")
    src = LiveSource([dev("leaf1", role="leaf", site="ams"), dev("leaf2", role="leaf", site="fra"),
                      dev("spine1", role="spine", site="ams")])
    async with alert_pool(database_url) as pool:
        await add(pool, tags={"role": "leaf", "site": "ams"}, path=ERR_ANY, condition="above", threshold=10)
        for d in ("leaf1", "leaf2", "spine1"):
            src.observe(d, ERR, 11, T0)
            src.observe(d, e2, 12, T0)
            src.observe(d, "/interfaces/interface[name=Ethernet1]/state/counters/out-errors", 99, T0)
        await Engine(pool, src).evaluate_once(T0)
        assert await states(pool) == {("leaf1", ERR): "firing", ("leaf1", e2): "firing"}


@pytest.mark.asyncio
async def test_absent_fires_when_a_series_goes_silent_and_when_a_device_never_reports(database_url: str) -> None:
    src = LiveSource([dev("sw1", site="x"), dev("quiet", site="x")])
    async with alert_pool(database_url) as pool:
        await add(pool, tags={"site": "x"}, path=CPU, condition="absent", threshold=300, channels=["hook"])
        eng = Engine(pool, src)
        src.observe("sw1", CPU, 10, T0)
        await eng.evaluate_once(T0)  # starts watching `quiet` (no data at all)
        await eng.evaluate_once(T0 + 200)
        assert set((await states(pool)).values()) == {"ok"}
        await eng.evaluate_once(T0 + 301)
        assert await states(pool) == {("sw1", CPU): "firing", ("quiet", CPU): "firing"}
        src.observe("sw1", CPU, 11, T0 + 302)
        await eng.evaluate_once(T0 + 303)
        assert (await states(pool))[("sw1", CPU)] == "resolved"
        assert (await states(pool))[("quiet", CPU)] == "firing"


@pytest.mark.asyncio
async def test_absent_on_a_pattern_resolves_the_silent_device_once_it_reports(database_url: str) -> None:
    src = LiveSource([dev("quiet", site="x")])
    async with alert_pool(database_url) as pool:
        await add(pool, tags={"site": "x"}, path=ERR_ANY, condition="absent", threshold=300)
        eng = Engine(pool, src)
        await eng.evaluate_once(T0)
        await eng.evaluate_once(T0 + 301)
        assert await states(pool) == {("quiet", ERR_ANY): "firing"}
        src.observe("quiet", ERR, 1, T0 + 302)  # a series matching the pattern, not the pattern itself
        await eng.evaluate_once(T0 + 303)
        assert await states(pool) == {("quiet", ERR_ANY): "resolved"}


@pytest.mark.asyncio
async def test_resolved_goes_back_to_ok_after_keep_and_refires_as_a_new_episode(database_url: str) -> None:
    src = LiveSource([dev("sw1")])
    async with alert_pool(database_url) as pool:
        await add(pool, device="sw1", path=CPU, condition="above", threshold=90)
        eng = Engine(pool, src, resolved_keep_s=100)
        for t, v in ((0, 95), (10, 10), (50, 10), (111, 10), (120, 96)):
            src.observe("sw1", CPU, v, T0 + t)
            await eng.evaluate_once(T0 + t)
        assert [t[2:] for t in await transitions(pool)] == [("ok", "firing"), ("firing", "resolved"),
                                                             ("resolved", "ok"), ("ok", "firing")]


@pytest.mark.asyncio
async def test_cooldown_suppresses_a_second_firing_notification_of_the_same_instance(database_url: str) -> None:
    src = LiveSource([dev("sw1")])
    async with alert_pool(database_url) as pool:
        await add(pool, device="sw1", path=CPU, condition="above", threshold=90, cooldown_s=600, channels=["hook"])
        eng = Engine(pool, src)
        for t, v in ((0, 95), (60, 10), (120, 95), (180, 10), (700, 95)):
            src.observe("sw1", CPU, v, T0 + t)
            await eng.evaluate_once(T0 + t)
        # fired three times; the second firing (120 s after the first) is inside the cooldown: no firing and
        # no resolved notification for that episode; the third (700 s) notifies again.
        assert [t[3] for t in await transitions(pool)] == ["firing", "resolved", "firing", "resolved", "firing"]
        assert await outbox_kinds(pool) == ["firing", "resolved", "firing"]
        detail = await pool.fetchval("SELECT detail FROM alert_history WHERE to_state = 'firing' ORDER BY id OFFSET 1 LIMIT 1")
        assert "cooldown" in detail


@pytest.mark.asyncio
async def test_acknowledge_once_recorded_and_reset_by_the_next_episode(database_url: str) -> None:
    src = LiveSource([dev("sw1")])
    async with alert_pool(database_url) as pool:
        await add(pool, device="sw1", path=CPU, condition="above", threshold=90)
        eng = Engine(pool, src)
        src.observe("sw1", CPU, 95, T0)
        await eng.evaluate_once(T0)
        (alert,) = await _alerts(pool)
        async with pool.acquire() as conn:
            await db.acknowledge(conn, alert.id, "alice")
            with pytest.raises(ValueError, match="already acknowledged by alice"):
                await db.acknowledge(conn, alert.id, "bob")
            with pytest.raises(LookupError, match="alert 999 does not exist"):
                await db.acknowledge(conn, 999, "bob")
        (alert,) = await _alerts(pool)
        assert alert.acknowledged and alert.acked_by == "alice"
        src.observe("sw1", CPU, 10, T0 + 10)
        await eng.evaluate_once(T0 + 10)
        async with pool.acquire() as conn:
            with pytest.raises(ValueError, match="is resolved, not firing"):
                await db.acknowledge(conn, alert.id, "bob")
        src.observe("sw1", CPU, 99, T0 + 20)
        await eng.evaluate_once(T0 + 20)
        (alert,) = await _alerts(pool)
        assert alert.state == "firing" and not alert.acknowledged
        assert [t[3] for t in await transitions(pool)] == ["firing", "acknowledged", "resolved", "firing"]


async def _alerts(pool: asyncpg.Pool):
    async with pool.acquire() as conn:
        return await db.list_alerts(conn)


@pytest.mark.asyncio
async def test_two_engines_evaluating_concurrently_make_each_transition_once(database_url: str) -> None:
    paths = [ERR.replace("Ethernet1", f"Ethernet{i}") for i in range(1, 41)]
    src = LiveSource([dev("sw1", role="leaf"), dev("sw2", role="leaf")])
    async with alert_pool(database_url, size=8) as pool_a, alert_pool(database_url, size=8) as pool_b:
        await add(pool_a, tags={"role": "leaf"}, path=ERR_ANY, condition="above", threshold=10, for_s=30,
                  channels=["hook", "hook2"])
        a, b = Engine(pool_a, src), Engine(pool_b, src)  # two hubs: separate pools, same database
        for t, v in ((0, 50), (15, 50), (31, 50), (45, 50), (60, 1), (70, 1)):
            for d in ("sw1", "sw2"):
                for p in paths:
                    src.observe(d, p, v, T0 + t)
            sa, sb = await asyncio.gather(a.evaluate_once(T0 + t), b.evaluate_once(T0 + t))
        hist = await transitions(pool_a)
        assert len(hist) == 80 * 3, len(hist)
        assert len(set(hist)) == 80 * 3, "a transition was recorded twice"
        assert sorted(await outbox_kinds(pool_a)) == ["firing"] * 160 + ["resolved"] * 160
        assert sa.lost + sb.lost >= 0  # both ran every round; who won each race is up to the scheduler
        dup = await pool_a.fetchval(
            "SELECT count(*) FROM (SELECT history_id, channel FROM alert_outbox GROUP BY 1, 2 HAVING count(*) > 1) d")
        assert dup == 0


@pytest.mark.asyncio
async def test_a_hub_dying_mid_transition_leaves_nothing_and_the_next_one_makes_it_once(database_url: str) -> None:
    src = LiveSource([dev("sw1")])
    async with alert_pool(database_url) as pool:
        await add(pool, device="sw1", path=CPU, condition="above", threshold=90, channels=["hook"])
        src.observe("sw1", CPU, 95, T0)
        # Hub A's database session dies inside the transition's transaction, after its UPDATE ran: a trigger
        # terminates the backend of any session named doomed-hub when it writes the history row.
        await pool.execute("""
            CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('application_name') = 'doomed-hub' THEN
                    PERFORM pg_terminate_backend(pg_backend_pid());
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER die BEFORE INSERT ON alert_history FOR EACH ROW EXECUTE FUNCTION die();""")
        doomed = await asyncpg.create_pool(database_url, min_size=1, max_size=1,
                                           server_settings={"application_name": "doomed-hub"})
        try:
            with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresError, OSError)):
                await Engine(doomed, src).evaluate_once(T0)
        finally:
            await doomed.close()
        assert await transitions(pool) == [] and await outbox_kinds(pool) == []
        assert set((await states(pool)).values()) <= {"ok"}
        # Hub B takes over (the election is not ours): the transition happens exactly once.
        b = Engine(pool, src)
        await b.evaluate_once(T0 + 5)
        await b.evaluate_once(T0 + 10)
        assert [t[2:] for t in await transitions(pool)] == [("ok", "firing")]
        assert await outbox_kinds(pool) == ["firing"]


@pytest.mark.asyncio
async def test_rate_increase_across_a_simulated_counter_reset(database_url: str) -> None:
    """SimDevice in-octets grow at a fixed per-interface rate; at 300 s the counters reset to zero.
    A rule under the rate fires and stays firing across the reset (a naive delta would go negative and
    resolve it); a rule over the rate never fires (a naive absolute delta would spike and fire it)."""
    sim = SimDevice("sw1", interfaces=2, started=0.0, faults=Faults(counter_reset_at_s=300.0))
    rate = sim.counters(0, now=100.0)["in-octets"] / 100.0
    path = "/interfaces/interface[name=eth0]/state/counters/in-octets"
    src = LiveSource([dev("sw1")])
    async with alert_pool(database_url) as pool:
        await add(pool, name="busy", device="sw1", path="/interfaces/interface[name=*]/state/counters/in-octets",
                  condition="rate_increase", threshold=rate * 0.2, for_s=60)
        await add(pool, name="too-busy", device="sw1", path=path, condition="rate_increase", threshold=rate * 1.5)
        eng = Engine(pool, src)
        values = []
        for t in range(10, 600, 30):
            for i, name in enumerate(sim.ifnames):
                src.observe("sw1", f"/interfaces/interface[name={name}]/state/counters/in-octets",
                            sim.counters(i, now=float(t))["in-octets"], T0 + t)
            values.append(sim.counters(0, now=float(t))["in-octets"])
            await eng.evaluate_once(T0 + t)
        assert min(values[10:]) < max(values[:10]), "the simulated counter did not reset"
        hist = await transitions(pool, "busy")
        assert [(h[1], h[3]) for h in hist if h[1] == path] == [(path, "pending"), (path, "firing")], hist
        assert await transitions(pool, "too-busy") == []
        # the link goes quiet: the counter stops growing, the rate drops to zero, the alert resolves
        last = sim.counters(0, now=580.0)["in-octets"]
        for t in (610, 640):
            src.observe("sw1", path, last, T0 + t)
            await eng.evaluate_once(T0 + t)
        assert [h[3] for h in await transitions(pool, "busy") if h[1] == path] == ["pending", "firing", "resolved"]


@pytest.mark.asyncio
async def test_a_failing_data_source_for_one_rule_is_counted_and_the_others_still_run(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    class FlakySource(LiveSource):  # a fake: LiveSource that breaks for one rule
        async def samples(self, rule, devices, now):
            if rule.name == "broken":
                raise RuntimeError("backend fell over")
            return await super().samples(rule, devices, now)

    src = FlakySource([dev("sw1")])
    async with alert_pool(database_url) as pool:
        await add(pool, name="broken", device="sw1", path=CPU, condition="above", threshold=1)
        await add(pool, name="works", device="sw1", path=CPU, condition="above", threshold=1)
        src.observe("sw1", CPU, 5, T0)
        stats = await Engine(pool, src).evaluate_once(T0)
        assert (stats.rules, stats.errors, stats.transitions) == (2, 1, 1)
        assert await transitions(pool, "works") == [("sw1", CPU, "ok", "firing")]
        assert "alert rule broken: evaluation failed" in caplog.text
