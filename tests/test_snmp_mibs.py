"""MIB rows → OpenConfig samples, as pure functions: 32-bit counter wraps, clears, sensor scaling, memory,
interface tables in both counter widths, chassis choice, vendors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from swtel.agent.collectors import paths
from swtel.agent.collectors import snmp_mibs as mib

W = mib.WRAP32


def test_a_wrap_continues_the_total() -> None:
    assert mib.unwrap32(W - 100, W - 100, 50) == W + 50
    assert mib.unwrap32(10, 10, 25) == 25


def test_a_drop_larger_than_the_link_could_carry_is_a_reset_not_a_wrap() -> None:
    # 100 Mb/s for 30 s carries at most ~412 MB: a fall from 3 GB to 1 kB would be a 1.3 GB "wrap"
    limit = mib.max_delta("in-octets", 100_000_000, 30)
    assert limit is not None and limit < W
    assert mib.unwrap32(3_000_000_000, 9_000_000_000, 1_000, max_delta=limit) == 1_000  # cleared counters
    assert mib.unwrap32(W - 5_000, 9_000_000_000, 1_000, max_delta=limit) == 9_000_006_000  # a real wrap
    assert mib.max_delta("in-unicast-pkts", 8 * 64, 1) == pytest.approx(1.1)  # one minimum frame a second, +10 %
    assert mib.max_delta("in-octets", 0, 30) is None


def test_rate_across_a_wrap_is_the_true_rate() -> None:
    """A 10 Gb/s link at 60 % counted by a 32-bit counter polled every 3 s wraps every ~5.7 s."""
    rate = int(10e9 / 8 * 0.6)
    u = mib.Unwrapper()
    true = W - 2 * rate  # two polls before the first wrap
    totals = []
    for _ in range(10):
        totals.append(u.total("1", "in-octets", true % W, bound=mib.max_delta("in-octets", 10_000_000_000, 3)))
        true += 3 * rate
    assert [b - a for a, b in zip(totals, totals[1:])] == [3 * rate] * 9
    assert totals[-1] == true - 3 * rate  # the total is the true 64-bit count


@given(st.integers(0, W - 1), st.lists(st.integers(0, W - 1), min_size=1, max_size=50))
def test_unwrapped_differences_equal_the_increments(start: int, steps: list[int]) -> None:
    u = mib.Unwrapper()
    true = start
    prev = u.total("7", "out-octets", true % W)
    for step in steps:
        true += step
        now = u.total("7", "out-octets", true % W)
        assert now - prev == step
        prev = now


def test_restart_forgets_the_offsets() -> None:
    u = mib.Unwrapper()
    u.total("1", "in-octets", W - 1)
    assert u.total("1", "in-octets", 5) == W + 5
    u.restart()
    assert u.total("1", "in-octets", 5) == 5


def test_sensor_scaling_follows_rfc_3433() -> None:
    assert mib.sensor_celsius(425, 9, 1) == 42.5  # units, one decimal
    assert mib.sensor_celsius(42500, 8, 0) == 42.5  # milli
    assert mib.sensor_celsius(42, 9, 0) == 42.0
    temps = mib.temperatures({"5": 8, "6": 10}, {"5": 9, "6": 9}, {"5": 1}, {"5": 431, "6": 12000},
                             {"5": b"Inlet"})
    assert temps == [("Inlet", 43.1)]  # the voltage sensor (type 10) is no temperature


def test_hr_memory_uses_the_ram_rows() -> None:
    types = {"1": "1.3.6.1.2.1.25.2.1.2", "3": "1.3.6.1.2.1.25.2.1.3", "10": ".1.3.6.1.2.1.25.2.1.2"}
    units, size, used = {"1": 1024, "3": 1024, "10": 4096}, {"1": 100, "3": 999, "10": 10}, {"1": 40, "3": 1, "10": 5}
    assert mib.hr_memory(types, units, size, used) == (100 * 1024 + 10 * 4096, 40 * 1024 + 5 * 4096)
    assert mib.hr_memory({"3": "1.3.6.1.2.1.25.2.1.3"}, units, size, used) is None


def _cols(hc: bool, in32: int, in64: int) -> dict[str, dict[str, object]]:
    cols: dict[str, dict[str, object]] = {
        mib.IF_NAME: {"1": b"Ethernet1", "2": b""}, mib.IF_DESCR: {"1": b"ignored", "2": b"Management1"},
        mib.IF_OPER_STATUS: {"1": 1, "2": 7}, mib.IF_ALIAS: {"1": b"uplink"}, mib.IF_HIGH_SPEED: {"1": 10000},
        mib.COUNTER_COLUMNS["in-octets"][1]: {"1": in32}, mib.COUNTER_COLUMNS["in-errors"][1]: {"1": 3},
    }
    if hc:
        cols[mib.COUNTER_COLUMNS["in-octets"][0]] = {"1": in64}  # type: ignore[index]
    return cols


def test_interface_samples_prefer_the_64_bit_columns() -> None:
    out = {s.path: s.value for s in mib.interface_samples(_cols(True, 7, 2**40), True, mib.Unwrapper(), 100, 1)}
    assert out[paths.counter("Ethernet1", "in-octets")] == 2**40
    assert out[paths.counter("Ethernet1", "in-errors")] == 3
    assert out[paths.oper_status("Ethernet1")] == "UP" and out[paths.oper_status("Management1")] == "LOWER_LAYER_DOWN"
    assert out["/interfaces/interface[name=Ethernet1]/state/description"] == "uplink"
    assert out["/interfaces/interface[name=Ethernet1]/ethernet/state/negotiated-port-speed"] == "SPEED_10GB"


def test_interface_samples_unwrap_the_32_bit_columns() -> None:
    u = mib.Unwrapper()
    first = {s.path: s.value for s in mib.interface_samples(_cols(False, W - 10, 0), False, u, 100, 1)}
    second = {s.path: s.value for s in mib.interface_samples(_cols(False, 20, 0), False, u, 3100, 2)}
    p = paths.counter("Ethernet1", "in-octets")
    assert first[p] == W - 10 and second[p] == W + 20


def test_the_wrap_bound_uses_each_counters_own_elapsed_time() -> None:
    """A fall from 1 GB to 20 B at 10 Mb/s: 1 s after the last reading it is a clear, an hour after a wrap."""
    u = mib.Unwrapper()
    u.total("1", "in-octets", 10**9, uptime_cs=0, speed_bps=10_000_000)
    assert u.total("1", "in-octets", 20, uptime_cs=100, speed_bps=10_000_000) == 20  # cleared
    u.total("2", "in-octets", 10**9, uptime_cs=0, speed_bps=10_000_000)
    assert u.total("2", "in-octets", 20, uptime_cs=360_000, speed_bps=10_000_000) == 10**9 + (W - 10**9) + 20


def test_chassis_and_vendor() -> None:
    classes = {"1": 3, "2": 8, "22": 9}
    fields = {"model": {"1": b"DCS-7050", "22": b"SFP"}, "serial": {"1": b"JPE123", "22": b"X1"},
              "vendor": {"1": b"Arista Networks"}}
    assert mib.chassis(classes, fields) == {"model": "DCS-7050", "serial": "JPE123", "vendor": "Arista Networks"}
    assert mib.vendor_of("1.3.6.1.4.1.30065.1.3011") == "Arista" and mib.vendor_of("1.3.6.1.4.1.9.1.1") == "Cisco"
    assert mib.vendor_of("1.3.6.1.2.1") == ""


def test_optional_columns_are_walked_only_when_asked_for() -> None:
    default = mib.optional_leaves(["/interfaces/interface/state/counters", "/interfaces/interface/state/oper-status"])
    assert default == set()
    assert mib.optional_leaves(["/interfaces"]) == mib.optional_leaves(["/"]) == {"description", "speed"}
    assert mib.optional_leaves(["/interfaces/interface[name=eth0]/state"]) == {"description"}
    hc = mib.interface_columns(True, default)
    assert mib.IF_ALIAS not in hc and mib.IF_HIGH_SPEED not in hc and len(hc) == 12
    assert mib.IF_HIGH_SPEED in mib.interface_columns(False, default)  # 32-bit: speeds bound the wraps
