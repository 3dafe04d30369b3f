"""CLI parsers on recorded outputs: simulator recordings (checked against the model that produced them)
and hand-written outputs in each vendor's layout (checked against the numbers written in them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from swtel.agent.collectors import parsers, paths
from swtel.agent.sim import cli
from swtel.agent.sim.model import COUNTERS, SimDevice

FIXTURES = Path(__file__).parent / "fixtures" / "cli"
PLATFORMS = ["eos", "nxos", "junos", "iosxr", "ios", "generic"]
NOT_PRINTED = {"ios": {"out-unicast-pkts", "out-multicast-pkts"}}  # IOS prints no output multicast figure
TS = 1_700_000_000_000_000_000


class FrozenDevice(SimDevice):
    """A simulated device whose clock stands still at one hour, so its outputs are reproducible."""

    def age(self, now: float | None = None) -> float:
        return 3600.0


def fixture_name(kind: str, command: str) -> str:
    return f"{kind}_" + command.replace(" | ", "_").replace("|", "").replace(" ", "_") + ".txt"


def parse_all(platform: str, outputs: dict[str, str]) -> dict[str, object]:
    mod = parsers.platform(platform)
    values: dict[str, object] = {}
    for cmd, text in outputs.items():
        for s in mod.parse(cmd, text, TS):
            assert s.ts == TS
            values[s.path] = s.value
    return values


def commands(platform: str) -> list[str]:
    """Each command's preferred variant (what the simulator answers: JSON where the platform has it)."""
    return [c.variants[0].command for cmds in parsers.platform(platform).COMMANDS.values() for c in cmds]


@pytest.mark.parametrize("source", ["live", "recorded"])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_simulator_output_parses_to_the_models_values(platform: str, source: str) -> None:
    dev = FrozenDevice(f"rec-{platform}", platform=platform, interfaces=2)
    if source == "live":
        outputs = {cmd: cli.run(dev, cmd) for cmd in commands(platform)}
    else:
        outputs = {cmd: (FIXTURES / platform / fixture_name("sim", cmd)).read_text() for cmd in commands(platform)}
    values = parse_all(platform, outputs)

    missing = NOT_PRINTED.get(platform, set())
    for i, name in enumerate(dev.ifnames):
        assert values[paths.oper_status(name)] == dev.oper_status(i)
        for leaf, v in dev.counters(i).items():
            if leaf not in missing:
                assert values[paths.counter(name, leaf)] == v, (name, leaf)
    assert values[paths.CPU] == dev.cpu_percent()
    physical, utilized = dev.memory()
    assert values[paths.MEM_PHYSICAL] == physical
    assert abs(values[paths.MEM_UTILIZED] - utilized) <= physical * 0.005 + 1024**2  # type: ignore[operator]
    temp = values[paths.temperature(cli.sensor_name(platform))]
    assert abs(temp - dev.temperature()) <= 0.5  # type: ignore[operator]
    assert len(values) == 2 * (len(COUNTERS) - len(missing) + 1) + 4


def vendor(platform: str, command: str, name: str | None = None) -> list:
    text = (FIXTURES / platform / (name or fixture_name("vendor", command))).read_text()
    return parsers.platform(platform).parse(command, text, TS)


def as_dict(samples: list) -> dict[str, object]:
    return {s.path: s.value for s in samples}


def test_eos_vendor_outputs() -> None:
    v = as_dict(vendor("eos", "show interfaces | json"))
    assert v[paths.counter("Ethernet1", "in-octets")] == 11537212
    assert v[paths.counter("Ethernet1", "in-multicast-pkts")] == 87216
    assert v[paths.counter("Ethernet1", "in-errors")] == 2
    assert v[paths.counter("Ethernet1", "in-discards")] == 5
    assert v[paths.oper_status("Ethernet1")] == "UP"
    assert v[paths.oper_status("Ethernet2")] == "LOWER_LAYER_DOWN"
    assert v[paths.oper_status("Loopback0")] == "UP"
    assert not any("Loopback0]/state/counters" in p for p in v)  # no counters in the output, none invented
    assert as_dict(vendor("eos", "show processes top once | json")) == {paths.CPU: 12}
    assert as_dict(vendor("eos", "show version | json")) == {
        paths.MEM_PHYSICAL: 8099732 * 1024, paths.MEM_UTILIZED: (8099732 - 5394360) * 1024}
    assert as_dict(vendor("eos", "show system environment temperature | json")) == {
        paths.temperature("TempSensor1"): 47.5, paths.temperature("TempSensor2"): 28.25,
        paths.temperature("TempSensorP1/1"): 31.0}


def test_nxos_vendor_outputs() -> None:
    v = as_dict(vendor("nxos", "show interface | json"))
    assert v[paths.counter("mgmt0", "in-octets")] == 98765432  # a string in the JSON
    assert v[paths.counter("Ethernet1/1", "out-discards")] == 4
    assert v[paths.oper_status("Ethernet1/2")] == "DOWN"
    assert not any("Vlan10" in p for p in v)  # SVIs have no eth_ counters and no "state"
    single = as_dict(vendor("nxos", "show interface | json", "vendor_single_row_show_interface_json.txt"))
    assert single[paths.counter("Ethernet1/49", "out-octets")] == 2000
    assert as_dict(vendor("nxos", "show system resources | json")) == {
        paths.CPU: 8, paths.MEM_PHYSICAL: 24574584 * 1024, paths.MEM_UTILIZED: 7651228 * 1024}
    assert as_dict(vendor("nxos", "show environment temperature | json")) == {
        paths.temperature("FRONT"): 34.0, paths.temperature("BACK"): 29.0, paths.temperature("CPU"): 47.0}


def test_junos_vendor_outputs() -> None:
    v = as_dict(vendor("junos", "show interfaces extensive"))
    c = paths.counter
    assert v[c("ge-0/0/0", "in-octets")] == 9876543210  # the physical figure, not the logical unit's
    assert v[c("ge-0/0/0", "out-unicast-pkts")] == 2300000
    assert v[c("ge-0/0/0", "in-multicast-pkts")] == 340000
    assert (v[c("ge-0/0/0", "in-errors")], v[c("ge-0/0/0", "in-discards")]) == (3, 17)
    assert (v[c("ge-0/0/0", "out-errors")], v[c("ge-0/0/0", "out-discards")]) == (1, 9)
    assert v[paths.oper_status("ge-0/0/1")] == "DOWN"
    assert not any("ge-0/0/0.0" in p for p in v)
    assert as_dict(vendor("junos", "show chassis routing-engine")) == {
        paths.CPU: 12, paths.MEM_PHYSICAL: 15979 * 1024**2, paths.MEM_UTILIZED: 15979 * 1024**2 * 28 // 100,
        paths.temperature("Routing Engine"): 39.0}  # the master (slot 0) only


def test_iosxr_vendor_outputs() -> None:
    v = as_dict(vendor("iosxr", "show interfaces"))
    c = paths.counter
    g0 = "GigabitEthernet0/0/0/0"
    assert v[c(g0, "in-octets")] == 135792468
    assert v[c(g0, "in-unicast-pkts")] == 1550021 - 7 - 48213
    assert v[c(g0, "in-discards")] == 12 and v[c(g0, "in-errors")] == 4
    assert v[c(g0, "out-multicast-pkts")] == 45102
    assert v[paths.oper_status("GigabitEthernet0/0/0/1")] == "DOWN"
    assert v[paths.oper_status("Null0")] == "UP"
    assert as_dict(vendor("iosxr", "show processes cpu")) == {paths.CPU: 3}
    assert as_dict(vendor("iosxr", "show memory summary")) == {
        paths.MEM_PHYSICAL: 24576 * 1024**2, paths.MEM_UTILIZED: (24576 - 17894) * 1024**2}
    assert as_dict(vendor("iosxr", "show environment temperature")) == {
        paths.temperature("0/RP0/CPU0/Inlet Temp"): 24.0, paths.temperature("0/RP0/CPU0/CPU Die Temp"): 41.0,
        paths.temperature("0/PM0/PSU Hot Spot Temp"): 30.0}


def test_generic_table_with_some_columns() -> None:
    v = as_dict(vendor("generic", "show interfaces counters", "hand_two_columns_show_interfaces_counters.txt"))
    assert v == {paths.oper_status("eth0"): "UP", paths.counter("eth0", "in-octets"): 1000,
                 paths.counter("eth0", "out-octets"): 2000, paths.oper_status("eth1"): "DOWN",
                 paths.counter("eth1", "in-octets"): 0, paths.counter("eth1", "out-octets"): 0}


GARBAGE = ["", "\x00\xff garbage ]]>", "{}", "[1, 2]", '{"interfaces": 5}', "% Invalid input", "Physical"]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_raises_parse_error_never_anything_else(platform: str, text: str) -> None:
    mod = parsers.platform(platform)
    for cmd in parsers.command_strings(mod):
        try:
            samples = mod.parse(cmd, text, TS)
        except parsers.ParseError:
            continue
        assert samples == [] or all(isinstance(s.path, str) for s in samples)
