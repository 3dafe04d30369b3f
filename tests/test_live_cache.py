"""The live cache and fleet status on their own: rates from counters, resets, bounds, samples/s, status."""

from __future__ import annotations

from swtel.hub.live.cache import LiveCache
from swtel.hub.live.fleet import AUTH_FAILED, COLLECTING, DOWN, UNASSIGNED, UNREACHABLE, WAITING, FleetState
from swtel.shared import naming, wire

OCT = "/interfaces/interface[name=Ethernet1]/state/counters/in-octets"
OPER = "/interfaces/interface[name=Ethernet1]/state/oper-status"
CPU = "/system/cpus/cpu[index=0]/state/total/instant"
S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def batch(seq: int, samples: list[tuple[str, object, int]], device: str = "sw1") -> bytes:
    return wire.encode(wire.TelemetryBatch(device, "agent-a", 5, seq, "s",
                                           [wire.Sample(p, v, ts) for p, v, ts in samples]))


def test_counter_rates_resets_and_history() -> None:
    cache = LiveCache(history_points=4)
    cache.handle("x", batch(1, [(OCT, 1000, 10 * S), (OPER, "UP", 10 * S), (CPU, 20, 10 * S)]))
    cache.handle("x", batch(2, [(OCT, 3000, 12 * S), (CPU, 30, 12 * S)]))
    series = cache.devices["sw1"].series
    assert series[OCT].rate == 1000.0 and series[OCT].value == 3000
    cache.handle("x", batch(3, [(OCT, 500, 13 * S)]))  # went backwards: a reset, no rate for this step
    assert series[OCT].rate is None and series[OCT].value == 500
    cache.handle("x", batch(4, [(OCT, 1500, 14 * S)]))
    assert series[OCT].rate == 1000.0
    cache.handle("x", batch(5, [(OCT, 1400, 13 * S)]))  # reordered older reading: ignored
    assert series[OCT].value == 1500
    latest, history = cache.snapshot("sw1", history=True)
    assert latest[OPER] == [10_000, "UP", None]
    assert OPER not in history  # strings have no history
    assert history[CPU] == [[10_000, 20], [12_000, 30]]
    assert history[OCT] == [[12_000, 1000.0], [14_000, 1000.0]]  # rates; none across the reset
    for i in range(5):
        cache.handle("x", batch(6 + i, [(CPU, i, (20 + i) * S)]))
    assert [y for _, y in cache.snapshot("sw1", history=True)[1][CPU]] == [1, 2, 3, 4]  # the ring's size
    only_if, past = cache.snapshot("sw1", ("/interfaces/",), history=("/in-octets",))
    assert set(only_if) == {OCT, OPER} and set(past) == {OCT}
    assert cache.snapshot("sw1")[1] == {}  # history only when asked for


def test_series_beyond_the_bound_are_counted_not_kept() -> None:
    cache = LiveCache(max_series=2)
    cache.handle("x", batch(1, [(OCT, 1, S), (OPER, "UP", S), (CPU, 3, S)]))
    assert cache.series_count == 2 and cache.stats["series_refused"] == 1
    cache.forget("sw1")
    assert cache.series_count == 0


def test_samples_per_second_over_a_window() -> None:
    clock = Clock()
    cache = LiveCache(clock=clock)
    d = cache.device("sw1")
    for i in range(11):
        d.samples = 100 * i
        d.roll(clock.t, 30.0)
        clock.t += 1.0
    assert d.sps == 100.0


def test_status_follows_leases_presence_events_and_staleness() -> None:
    clock = Clock()
    cache = LiveCache(clock=clock)
    fleet = FleetState(cache, clock=clock)
    dev = wire.Device("sw1", "10.0.0.1", 9339, "gnmi", subscriptions=[wire.Subscription("s", ["/"], interval_s=2.0)])
    key = naming.encode_name("sw1")
    fleet.apply(naming.BUCKET_DEVICES, key, wire.encode_kv(dev), None, 1)
    assert fleet.status("sw1", clock.t) == UNASSIGNED
    fleet.apply(naming.BUCKET_LEASES, key, wire.encode_kv(wire.Lease("sw1", "agent-a", "inc1")), None, 7)
    assert fleet.status("sw1", clock.t) == UNASSIGNED  # the holder has no presence
    presence = wire.AgentPresence("agent-a", "inc1", "h", "1", 100)
    fleet.apply(naming.BUCKET_AGENTS, naming.encode_name("agent-a"), wire.encode_kv(presence), None, 3)
    assert fleet.status("sw1", clock.t) == WAITING
    cache.handle("x", batch(1, [(OCT, 1, S)]))
    assert fleet.status("sw1", clock.t) == COLLECTING
    clock.t += 7.0  # more than 3 intervals of 2 s without telemetry
    assert fleet.status("sw1", clock.t) == UNREACHABLE
    cache.handle("x", batch(2, [(OCT, 2, 2 * S)]))
    clock.t += 0.1
    cache.handle("x", wire.encode(wire.Event("sw1", "agent-a", "auth_failed", 3 * S)))
    assert fleet.status("sw1", clock.t) == COLLECTING  # one failed attempt: hysteresis, no flip
    cache.handle("x", wire.encode(wire.Event("sw1", "agent-a", "device_down", 3 * S + 1)))
    assert fleet.status("sw1", clock.t) == AUTH_FAILED  # down, and the failure that caused it is named
    cache.handle("x", wire.encode(wire.Event("sw1", "agent-a", "device_up", 3 * S + 2)))
    assert fleet.status("sw1", clock.t) == COLLECTING
    cache.handle("x", wire.encode(wire.Event("sw1", "agent-a", "timeout", 3 * S + 3)))
    cache.handle("x", wire.encode(wire.Event("sw1", "agent-a", "device_down", 3 * S + 4)))
    assert fleet.status("sw1", clock.t) == DOWN and fleet.row("sw1", clock.t)["event"] == "timeout"
    cache.handle("x", wire.encode(wire.Event("sw1", "agent-b", "session_up", 3 * S + 5)))  # a new holder
    assert fleet.status("sw1", clock.t) == COLLECTING
    cache.handle("x", wire.encode(wire.Event("sw1", "agent-a", "device_down", 3 * S + 6)))
    assert fleet.row("sw1", clock.t)["agent"] == "agent-a"
    assert fleet.lease_map() == {"agent-a": ["sw1"]}
    assert fleet.agents_view(clock.t)[0]["devices"] == 1
    fleet.apply(naming.BUCKET_AGENTS, naming.encode_name("agent-a"), None, "PURGE", 4)  # presence expired
    fleet.apply(naming.BUCKET_AGENTS, naming.encode_name("agent-a"), None, "DEL", 5)  # and a DEL after: fine
    assert fleet.status("sw1", clock.t) == UNASSIGNED and fleet.agents_view(clock.t) == []
    fleet.apply(naming.BUCKET_LEASES, key, b"{not json", None, 8)
    assert fleet.malformed == 1
