"""Which samples a polling subscription keeps (``paths.keep``): the same answers as the subscription's
matcher, remembered per sample path and bounded."""

from __future__ import annotations

from swtel.agent.collectors import paths
from swtel.shared import wire

SAMPLES = [wire.Sample(p, 1, 1) for p in (
    paths.counter("Ethernet1", "in-octets"), paths.counter("Ethernet2", "in-octets"),
    paths.oper_status("Ethernet1"), paths.CPU, paths.MEM_PHYSICAL, paths.temperature("CPU"))]
SUBSCRIPTIONS = [
    ["/interfaces"], ["/interfaces/interface[name=Ethernet2]/state/counters/in-octets"],
    ["/interfaces/interface/state/oper-status", "/system/memory"], ["/"], ["/components", "/system/cpus"], ["/nothing"],
]


def test_keep_answers_as_the_matcher_every_poll() -> None:
    for _ in range(3):  # answers remembered from earlier polls (and other subscriptions) stay right
        for sub in SUBSCRIPTIONS:
            match = paths.matcher(sub)
            assert paths.keep(SAMPLES, sub) == [s for s in SAMPLES if match(s.path)], sub


def test_remembered_answers_are_bounded() -> None:
    sub = ["/interfaces/interface[name=Ethernet1]"]
    many = [wire.Sample(paths.counter(f"Ethernet{i}", "in-octets"), 1, 1) for i in range(paths._KEPT_MAX + 10)]
    kept = paths.keep(many, sub)
    assert [s.path for s in kept] == [paths.counter("Ethernet1", "in-octets")]
    assert len(paths._KEPT[tuple(sub)]) <= paths._KEPT_MAX + 10
    paths.keep(SAMPLES, sub)  # the next poll starts that subscription's answers over
    assert len(paths._KEPT[tuple(sub)]) <= len(SAMPLES)
