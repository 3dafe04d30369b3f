"""The fleet-work election in one process: one leader among candidates, a graceful hand-over at once, the
work never running twice at a time, self-fencing when NATS stops answering (a real nats-server paused with
SIGSTOP), and the hub's alert data source over the database."""

from __future__ import annotations

import asyncio
import time

import pytest

from support.natsserver import NatsServer
from support.telemetry import db, hub_settings, migrate
from support.waits import eventually
from swtel.hub.alerts import db as alert_db
from swtel.hub.alerts.hubsource import HubSource
from swtel.hub.alerts.rules import Rule
from swtel.hub.leader import Election
from swtel.hub.service import HubCore
from swtel.hub.storage import open_storage
from swtel.hub.storage.base import Item
from swtel.hub.storage.connect import create_pool
from swtel.shared import naming, wire
from swtel.shared.inventory import make_device
from swtel.shared.natsconn import connect


class Timeline:
    """When each candidate's work ran, to prove that two never ran at once."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self.running: dict[str, float] = {}

    def work(self, name: str) -> Work:
        return Work(self, name)

    def overlaps(self) -> list[tuple[str, str]]:
        spans = self.spans + [(n, t, float("inf")) for n, t in self.running.items()]
        return [(a[0], b[0]) for i, a in enumerate(spans) for b in spans[i + 1:] if a[1] < b[2] and b[1] < a[2]]


class Work:
    def __init__(self, timeline: Timeline, name: str) -> None:
        self.timeline, self.name = timeline, name
        self.closed = asyncio.Event()

    async def run(self) -> None:
        self.timeline.running[self.name] = time.monotonic()
        try:
            await self.closed.wait()
        finally:
            self.timeline.spans.append((self.name, self.timeline.running.pop(self.name), time.monotonic()))

    def close(self) -> None:
        self.closed.set()


@pytest.mark.asyncio
async def test_one_leader_and_a_graceful_handover_at_once(bootstrapped: str) -> None:
    s = hub_settings(bootstrapped, "postgresql://unused")
    timeline = Timeline()
    elections = {n: Election(s, n, lambda n=n: timeline.work(n)) for n in ("h1", "h2", "h3")}
    tasks = {n: asyncio.create_task(e.run()) for n, e in elections.items()}
    try:
        async def one_leader() -> str | None:
            leaders = [n for n, e in elections.items() if e.is_leader]
            seen = {e.leader for e in elections.values()}
            return leaders[0] if len(leaders) == 1 and seen == {leaders[0]} else None

        first = await eventually(one_leader, timeout=10, what="exactly one leader, known to every candidate")
        assert list(timeline.running) == [first]
        t0 = time.monotonic()
        await elections[first].stop()
        await tasks.pop(first)
        assert not elections[first].is_leader and first not in timeline.running

        async def successor() -> str | None:
            return next((n for n, e in elections.items() if e.is_leader and n != first), None)

        second = await eventually(successor, timeout=5, what="another candidate to take over")
        handover = time.monotonic() - t0
        assert handover < 1.0, f"graceful hand-over took {handover:.2f}s"
        print(f"graceful hand-over in one process: {handover:.3f}s")
        await asyncio.sleep(s.heartbeat_s * 2)  # let the followers poll a few times: still one leader
        assert [n for n, e in elections.items() if e.is_leader] == [second]
    finally:
        for e in elections.values():
            await e.stop()
        await asyncio.gather(*tasks.values())
    assert timeline.overlaps() == []
    assert not timeline.running


@pytest.mark.asyncio
async def test_an_observer_never_leads(bootstrapped: str) -> None:
    s = hub_settings(bootstrapped, "postgresql://unused")
    timeline = Timeline()
    observer = Election(s, "watcher", lambda: timeline.work("watcher"), candidate=False)
    task = asyncio.create_task(observer.run())
    try:
        await asyncio.sleep(s.heartbeat_s)
        assert not observer.is_leader and observer.leader is None
        leader = Election(s, "h1", lambda: timeline.work("h1"))
        lt = asyncio.create_task(leader.run())

        async def seen() -> bool:
            return observer.leader == "h1"

        await eventually(seen, timeout=5, what="the observer to see h1 lead")
        await leader.stop()
        await lt
        await asyncio.sleep(s.heartbeat_s)
        assert not observer.is_leader and "watcher" not in timeline.running
    finally:
        await observer.stop()
        await task


@pytest.mark.asyncio
async def test_hub_that_loses_nats_stops_fleet_work_before_its_key_can_expire(
    nats_server: NatsServer, bootstrapped: str, database_url: str
) -> None:
    await migrate(database_url)
    hub = HubCore(hub_settings(bootstrapped, database_url), ingest=False)
    await hub.start()
    try:
        async def leading() -> bool:
            return hub.election.is_leader and bool(hub.last_maintenance)

        await eventually(leading, timeout=10, what="the only hub to lead and run maintenance")
        assert "swtel_hub_fleet_work_leader 1" in hub.metrics.render()
        ttl = hub.election.ttl
        t_pause = time.monotonic()
        nats_server.pause()
        try:
            async def stopped() -> bool:
                return not hub.election.is_leader

            await eventually(stopped, timeout=ttl + 2, what="the hub to stop fleet work while NATS is paused")
            stopped_at = hub.election.work_stopped_at
            # the server expires the key ttl after the last write it received, which was sent no earlier than
            # renewed_sent: the work stopped before then, with the fence margin to spare
            assert stopped_at < hub.election.renewed_sent + ttl - hub.settings.fence_margin_s + 0.2
            assert stopped_at - t_pause < ttl
            print(f"fenced {stopped_at - t_pause:.2f}s after the pause, "
                  f"{hub.election.renewed_sent + ttl - stopped_at:.2f}s before the key could expire")
            assert hub.election.fenced == 1 and hub.metrics.fleet_fenced == 1 and not hub.metrics.fleet_leader
            assert "swtel_hub_fleet_work_leader 0" in hub.metrics.render()
        finally:
            nats_server.resume()
        await eventually(leading, timeout=15, what="the hub to lead again once NATS answers")
    finally:
        await hub.stop()
    nc = await connect(hub.settings, name="test-check")
    try:
        kv = await nc.jetstream().key_value(naming.BUCKET_HUBS)
        entry = None
        try:
            entry = await kv.get(naming.FLEET_WORK_KEY)
        except Exception:  # noqa: BLE001 (deleted: what a graceful stop does)
            pass
        assert entry is None or entry.value is None, "a stopped hub left its election key behind"
    finally:
        await nc.close()


CTR = "/interfaces/interface[name=Ethernet{}]/state/counters/in-errors"


@pytest.mark.asyncio
async def test_hub_source_reads_latest_points_rates_and_down_devices(bootstrapped: str, database_url: str) -> None:
    s = hub_settings(bootstrapped, database_url)
    await migrate(database_url)
    pool = await create_pool(database_url, max_size=2)
    try:
        storage = await open_storage(pool, s)
        now = time.time()

        def batch(dev: str, seq: int, ts: float, samples: list[tuple[str, object]]) -> Item:
            b = wire.TelemetryBatch(device=dev, agent="a1", token=1, seq=seq, subscription="x",
                                    samples=[wire.Sample(p, v, int(ts * 1e9)) for p, v in samples])
            return Item(b, seq)

        await storage.write_telemetry([
            batch("sw1", 1, now - 20, [(CTR.format(1), 100), (CTR.format(2), 5)]),
            batch("sw1", 2, now - 10, [(CTR.format(1), 160), (CTR.format(2), 2)]),  # Ethernet2 was reset
            batch("sw1", 3, now - 5, [("/interfaces/interface[name=Ethernet1]/state/oper-status", "UP")]),
            batch("sw2", 1, now - 3000, [(CTR.format(1), 7)]),  # older than the look-back window
        ])
        devices = [make_device("sw1", "10.0.0.1", "gnmi"), make_device("sw2", "10.0.0.2", "gnmi")]
        down: set[str] = set()

        async def inventory() -> list[wire.Device]:
            return devices

        async def down_devices() -> set[str]:
            return down

        src = HubSource(pool, inventory, down_devices=down_devices)
        assert [d.name for d in await src.devices()] == ["sw1", "sw2"]
        rule = Rule(name="r", device="sw1", path="/interfaces/interface[name=*]/state/counters/in-errors",
                    condition="rate_increase", threshold=1)
        got = {o.path: o for o in await src.samples(rule, ["sw1", "sw2"], now)}
        assert set(got) == {CTR.format(1), CTR.format(2)}, "sw2's only point is too old; oper-status does not match"
        e1, e2 = got[CTR.format(1)], got[CTR.format(2)]
        assert (e1.device, e1.value, e1.rate_per_s) == ("sw1", 160, pytest.approx(6.0))
        assert e1.ts == pytest.approx(now - 10, abs=1e-3)
        assert (e2.value, e2.rate_per_s) == (2, pytest.approx(0.2))  # a reset counts from zero
        # absent: the window grows by the rule's duration, so sw2's old point counts
        absent = Rule(name="a", tags={"x": "y"}, path="/interfaces/interface/state/counters/in-errors",
                      condition="absent", threshold=3600)
        got = {(o.device, o.path): o for o in await src.samples(absent, ["sw1", "sw2"], now)}
        assert set(got) == {("sw1", CTR.format(1)), ("sw1", CTR.format(2)), ("sw2", CTR.format(1))}
        assert got[("sw2", CTR.format(1))].ts == pytest.approx(now - 3000, abs=1e-3)
        # string series count for absent rules (their time, no value)
        status = Rule(name="s", device="sw1", path="/interfaces/interface/state/oper-status", condition="absent",
                      threshold=60)
        [obs] = await src.samples(status, ["sw1"], now)
        assert (obs.path, obs.value) == ("/interfaces/interface[name=Ethernet1]/state/oper-status", None)
        assert obs.ts == pytest.approx(now - 5, abs=1e-3)
        # a device the status model calls down is silent to absent rules, and only to them
        down.add("sw1")
        assert {o.device for o in await src.samples(absent, ["sw1", "sw2"], now)} == {"sw2"}
        assert {o.device for o in await src.samples(rule, ["sw1", "sw2"], now)} == {"sw1"}
        assert list(await src.samples(rule, [], now)) == []
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_maintenance_prunes_old_alert_history_but_not_what_is_still_to_be_sent(database_url: str) -> None:
    await migrate(database_url)
    async with db(database_url) as conn:
        hist = """INSERT INTO alert_history (instance_id, instance_version, rule_id, rule_name, device, path, severity,
                  from_state, to_state, at) VALUES ($1, 0, 1, 'r', 'sw1', '/p', 'warning', 'ok', 'firing',
                  now() - make_interval(days => $2)) RETURNING id"""
        old_sent, old_pending, recent = [await conn.fetchval(hist, i, d) for i, d in ((1, 100), (2, 100), (3, 1))]
        box = """INSERT INTO alert_outbox (history_id, channel, kind, payload, status, created_at)
                 VALUES ($1, 'hook', 'firing', '{}', $2, now() - make_interval(days => $3))"""
        await conn.execute(box, old_sent, "sent", 100)
        await conn.execute(box, old_pending, "pending", 100)  # still being retried: keep it and its history
        await conn.execute(box, recent, "sent", 1)
        assert await alert_db.prune(conn, 90) == {"alert_outbox_pruned": 1, "alert_history_pruned": 1}
        assert await alert_db.prune(conn, 90) == {"alert_outbox_pruned": 0, "alert_history_pruned": 0}  # idempotent
        assert sorted(await conn.fetchval("SELECT array_agg(id) FROM alert_history")) == [old_pending, recent]
        assert await conn.fetchval("SELECT count(*) FROM alert_outbox") == 2


@pytest.mark.asyncio
async def test_the_hub_feeds_reported_down_devices_to_alerts_and_forgets_removed_ones(
        bootstrapped: str, database_url: str) -> None:
    from swtel.hub import devstatus

    s = hub_settings(bootstrapped, database_url)
    await migrate(database_url)
    pool = await create_pool(database_url, max_size=2)
    try:
        hub = HubCore(s, pool=pool, ingest=False)
        hub.storage = await open_storage(pool, s)
        t = time.time_ns()
        ev = [wire.Event(device=d, agent="a1", kind="device_down", ts=t) for d in ("sw1", "sw2")]
        async with pool.acquire() as conn:
            await devstatus.record(conn, [], ev)
        assert hub.down_devices is not None and await hub.down_devices() == {"sw1", "sw2"}
        # the inventory mirror (fleet work) drops the status of a device removed from the inventory
        rows = [(d, "10.0.0.1", "gnmi", "eos", "{}", None, None) for d in ("sw1", "sw2")]
        await hub.storage.sync_devices(rows)
        assert await hub.down_devices() == {"sw1", "sw2"}
        await hub.storage.sync_devices(rows[:1])
        assert await hub.down_devices() == {"sw1"}
    finally:
        await pool.close()
