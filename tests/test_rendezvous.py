from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from swtel.shared.rendezvous import Candidate, DeviceSpec, plan, rank

agent_ids = st.lists(st.from_regex(r"agent-[a-z0-9]{1,6}", fullmatch=True), min_size=2, max_size=8, unique=True)
device_names = st.lists(st.from_regex(r"dev-[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=60, unique=True)


@given(agent_ids, device_names)
def test_same_input_gives_same_order_whatever_the_agent_order(agents: list[str], devices: list[str]) -> None:
    forward = [Candidate(a) for a in agents]
    backward = list(reversed(forward))
    for d in devices:
        assert rank(d, forward) == rank(d, backward)
        assert sorted(rank(d, forward)) == sorted(agents)


@given(agent_ids, device_names, st.data())
def test_removing_an_agent_moves_only_its_devices(agents: list[str], devices: list[str], data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from(agents))
    before = plan([DeviceSpec(d) for d in devices], [Candidate(a) for a in agents])
    after = plan([DeviceSpec(d) for d in devices], [Candidate(a) for a in agents if a != gone])
    for d in devices:
        if before[d] != gone:
            assert after[d] == before[d], f"{d} moved from {before[d]} to {after[d]} though {gone} left"
        else:
            assert after[d] != gone


@settings(max_examples=20)
@given(agent_ids, device_names)
def test_adding_an_agent_moves_devices_only_to_it(agents: list[str], devices: list[str]) -> None:
    new = "agent-new"
    before = plan([DeviceSpec(d) for d in devices], [Candidate(a) for a in agents])
    after = plan([DeviceSpec(d) for d in devices], [Candidate(a) for a in [*agents, new]])
    assert all(after[d] in (before[d], new) for d in devices)


def test_balance_and_weights() -> None:
    devices = [DeviceSpec(f"sw{i:05d}") for i in range(10_000)]
    counts = Counter(plan(devices, [Candidate(f"a{i}") for i in range(5)]).values())
    assert max(counts.values()) / (10_000 / 5) < 1.1, counts
    weighted = Counter(plan(devices, [Candidate("big", capacity=20_000), Candidate("small", capacity=10_000)]).values())
    assert 1.8 < weighted["big"] / weighted["small"] < 2.2, weighted


def test_pin_tags_drain_and_capacity_filter() -> None:
    agents = [Candidate("a", tags={"site": "dc1"}), Candidate("b", tags={"site": "dc2"}), Candidate("c", draining=True)]
    assert rank("x", agents, pinned="b") == ["b"]
    assert rank("x", agents, pinned="c") == []  # pinned to a draining agent: nobody
    assert rank("x", agents, device_tags={"site": "dc1"}) == ["a"]
    assert sorted(rank("x", agents, device_tags={"role": "leaf"})) == ["a", "b"]
    small = [Candidate("a", capacity=1), Candidate("b", capacity=1)]
    owners = plan([DeviceSpec(f"d{i}") for i in range(3)], small)
    assert sorted(v for v in owners.values() if v) == ["a", "b"] and list(owners.values()).count(None) == 1
