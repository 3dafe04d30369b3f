"""The mapping and the encoders without a network: names, labels, types, states, rules; remote-write bodies
decoded with the prompb message classes; line protocol escaping; how HTTP statuses are classified."""

from __future__ import annotations

import gzip

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swtel.hub.outputs import http, prompb
from swtel.hub.outputs.encode import Counts, LineEncoder, RemoteWriteEncoder
from swtel.hub.outputs.mapping import Mapper, default_metric, keyless
from swtel.hub.outputs.model import make_output, parse_rule
from swtel.hub.outputs.scrape import ScrapeStore
from swtel.shared import wire
from swtel.shared.errors import InvalidInput

IN_OCTETS = "/interfaces/interface[name=Ethernet1/1]/state/counters/in-octets"


@pytest.mark.parametrize("path,name,labels,counter", [
    (IN_OCTETS, "interface_in_octets_total", {"interface": "Ethernet1/1"}, True),
    ("/interfaces/interface[name=et-0/0/1]/state/oper-status", "interface_oper_status", {"interface": "et-0/0/1"}, False),
    ("/interfaces/interface[name=e1]/subinterfaces/subinterface[index=0]/state/counters/in-pkts",
     "interface_subinterface_in_pkts_total", {"interface": "e1", "subinterface": "0"}, True),
    ("/system/cpus/cpu[index=0]/state/total/instant", "system_cpu_total_instant", {"cpu": "0"}, False),
    ("/system/memory/state/physical", "system_memory_physical", {}, False),
    ("/components/component[name=CPU]/state/temperature/instant", "component_temperature_instant", {"component": "CPU"}, False),
    ("openconfig:/interfaces/interface[name=e1]/state/counters/out-octets", "interface_out_octets_total", {"interface": "e1"}, True),
    ("/openconfig-interfaces:interfaces/interface[name=e1]/state/mtu", "interface_mtu", {"interface": "e1"}, False),
])
def test_default_mapping_of_the_standard_paths(path: str, name: str, labels: dict[str, str], counter: bool) -> None:
    m = default_metric(path)
    assert (m.name, dict(m.labels), m.counter) == (name, labels, counter)


def test_states_are_mapped_dropped_or_info() -> None:
    d = make_output("x", "scrape")
    m = Mapper(d).metric("/interfaces/interface[name=e1]/state/oper-status")
    assert m is not None
    assert Mapper(d).number(m, "UP") == 1 and Mapper(d).number(m, "DOWN") == 2
    assert Mapper(d).number(m, "openconfig-if:LOWER_LAYER_DOWN") == 7
    assert Mapper(d).number(m, "SOMETHING_ELSE") is None
    assert Mapper(d).number(m, True) == 1
    drop = Mapper(make_output("x", "scrape", states="drop"))
    assert drop.number(m, "UP") is None
    info = Mapper(make_output("x", "scrape", states="info"))
    i = info.info(m, "UP")
    assert i is not None and i.name == "interface_oper_status_info" and ("value", "UP") in i.labels


def test_rules_rename_retype_and_drop() -> None:
    mp = Mapper(make_output("x", "scrape", rules=["/interfaces/interface/state/counters/in-octets=ifHCInOctets",
                                                  "/system/memory/*/utilized=:counter", "/system/cpus/*=drop",
                                                  "/system/cpus/cpu/state/total/instant=drop"]))
    m = mp.metric(IN_OCTETS)
    assert m is not None and m.name == "ifHCInOctets" and m.counter and dict(m.labels) == {"interface": "Ethernet1/1"}
    mem = mp.metric("/system/memory/state/utilized")
    assert mem is not None and mem.counter and mem.name == "system_memory_utilized"
    assert mp.metric("/system/cpus/cpu[index=0]/state/total/instant") is None
    assert keyless(IN_OCTETS) == "/interfaces/interface/state/counters/in-octets"


@pytest.mark.parametrize("args,msg", [
    (dict(name="Bad Name", kind="scrape"), "output name"),
    (dict(name="x", kind="kafka"), "kind"),
    (dict(name="x", kind="remote_write", url="ftp://a"), "http"),
    (dict(name="x", kind="remote_write", url="http://u:p@a/"), "no credentials in the URL"),
    (dict(name="x", kind="remote_write", url="http://a/", auth="basic"), "--credential"),
    (dict(name="x", kind="influx", url="http://a/"), "--database"),
    (dict(name="x", kind="influx", url="http://a/", database="d", influx_version=2), "--org"),
    (dict(name="x", kind="scrape", device_tags=["bad-label"]), "label"),
    (dict(name="x", kind="scrape", rules=["nopath"]), "rule"),
])
def test_bad_definitions_are_refused_with_a_clear_message(args: dict, msg: str) -> None:
    with pytest.raises(InvalidInput, match=msg):
        make_output(**args)


def test_parse_rule() -> None:
    assert parse_rule("/a/b=drop").type == "drop"
    assert parse_rule("/a/b=name:gauge").name == "name"


def batch(device: str, samples: list[tuple[str, object, int]]) -> wire.TelemetryBatch:
    return wire.TelemetryBatch(device, "a", 1, 1, "s", [wire.Sample(p, v, t) for p, v, t in samples])  # type: ignore[arg-type]


def test_remote_write_bodies_decode_with_the_prompb_messages() -> None:
    d = make_output("x", "remote_write", url="http://a/", device_tags=["site"])
    counts = Counts()
    enc = RemoteWriteEncoder(Mapper(d), counts, max_samples=3, shards=1)
    t = 1_700_000_000_123_456_789
    b = batch("leaf 1", [(IN_OCTETS, 10, t), (IN_OCTETS, 20, t + 10**9), ("/interfaces/interface[name=e2]/state/oper-status", "UP", t),
                         ("/system/memory/state/physical", 1.5, t), ("/x/descr", "free text", t)])
    bodies = enc.encode([b], lambda dev: (("site", "dc1"),))
    assert [x.samples for x in bodies] == [3, 1] and counts.skipped == {"string": 1}
    series: list[tuple[dict[str, str], list[tuple[float, int]]]] = []
    for body in bodies:
        req = prompb.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body.data)))
        for ts in req.timeseries:  # one TimeSeries per sample, as Prometheus' own sender writes them
            names = [lab.name for lab in ts.labels]
            assert names == sorted(names)  # the spec: labels sorted by name
            series.append(({lab.name: lab.value for lab in ts.labels}, [(s.value, s.timestamp) for s in ts.samples]))
    labels = {"__name__": "interface_in_octets_total", "device": "leaf 1", "interface": "Ethernet1/1", "site": "dc1"}
    assert series[:2] == [(labels, [(10.0, 1_700_000_000_123)]), (labels, [(20.0, 1_700_000_001_123)])]
    assert series[2][0]["__name__"] == "interface_oper_status" and series[2][1] == [(1.0, 1_700_000_000_123)]
    assert series[3][0]["__name__"] == "system_memory_physical" and series[3][1] == [(1.5, 1_700_000_000_123)]


def test_remote_write_shards_keep_each_series_in_one_shard_in_time_order() -> None:
    """Bodies of different shards are sent concurrently: a series must be in one shard only, in order."""
    enc = RemoteWriteEncoder(Mapper(make_output("x", "remote_write", url="http://a/")), Counts(), max_samples=7,
                             shards=4)
    t = 1_700_000_000_000_000_000
    fetch = [batch(f"d{k % 3}", [(f"/interfaces/interface[name=e{i}]/state/counters/in-octets", k * 10 + i,
                                  t + k * 10**9) for i in range(8)]) for k in range(9)]
    bodies = enc.encode(fetch, lambda d: ())
    assert sum(b.samples for b in bodies) == 72 and all(b.samples <= 7 for b in bodies)
    assert len({b.shard for b in bodies}) > 1
    where: dict[tuple[tuple[str, str], ...], set[int]] = {}
    times: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for body in bodies:
        for ts in prompb.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body.data))).timeseries:
            key = tuple((lab.name, lab.value) for lab in ts.labels)
            where.setdefault(key, set()).add(body.shard)
            times.setdefault(key, []).extend(s.timestamp for s in ts.samples)
    assert len(where) == 24 and all(len(v) == 1 for v in where.values())
    assert all(v == sorted(v) and len(v) == 3 for v in times.values())


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20),
       st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False, allow_infinity=False)))
def test_remote_write_encoding_round_trips(device: str, ifname: str, value: int | float) -> None:
    ifname = ifname.replace("]", "")
    enc = RemoteWriteEncoder(Mapper(make_output("x", "remote_write", url="http://a/")), Counts())
    path = f"/interfaces/interface[name={ifname}]/state/counters/in-octets"
    (body,) = enc.encode([batch(device, [(path, value, 1_000_000)])], lambda d: ())
    (ts,) = prompb.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body.data))).timeseries
    assert {lab.name: lab.value for lab in ts.labels}["device"] == device
    assert ts.samples[0].value == float(value) and ts.samples[0].timestamp == 1


def test_line_protocol_escapes_and_keeps_integers_exact() -> None:
    d = make_output("x", "influx", url="http://a/", database="db")
    enc = LineEncoder(Mapper(d), Counts(), shards=1)
    t = 1_700_000_000_123_456_789
    (body,) = enc.encode([batch("leaf,1 a=b", [(IN_OCTETS, 2**62 + 1, t), ("/system/memory/state/physical", 2.5, t),
                                              ("/interfaces/interface[name=e2]/state/oper-status", "DOWN", t),
                                              ("/system/temp", float("nan"), t)])], lambda dev: ())
    lines = gzip.decompress(body.data).decode().splitlines()
    assert lines == [
        f"interface_in_octets_total,device=leaf\\,1\\ a\\=b,interface=Ethernet1/1 value={2**62 + 1}i {t}",
        f"system_memory_physical,device=leaf\\,1\\ a\\=b value=2.5 {t}",
        f"interface_oper_status,device=leaf\\,1\\ a\\=b,interface=e2 value=2.0 {t}",
    ]
    assert enc.counts.skipped == {"not_finite": 1}


def test_scrape_store_keeps_the_newest_value_with_its_timestamp_and_is_bounded() -> None:
    counts = Counts()
    store = ScrapeStore(Mapper(make_output("x", "scrape")), counts, max_series=2)
    t = 1_700_000_000_000_000_000
    store.update([batch("d1", [(IN_OCTETS, 5, t + 10**9), ("/system/memory/state/physical", 7, t)])], lambda d: ())
    store.update([batch("d1", [(IN_OCTETS, 4, t)])], lambda d: ())  # an older replay does not win
    store.update([batch("d2", [(IN_OCTETS, 1, t)])], lambda d: ())  # a third series: over the bound
    text = store.render()
    assert "# TYPE interface_in_octets_total counter" in text
    assert 'interface_in_octets_total{device="d1",interface="Ethernet1/1"} 5 1700000001000' in text
    assert 'system_memory_physical{device="d1"} 7 1700000000000' in text
    assert "d2" not in text and counts.skipped == {"max_series": 1}


@pytest.mark.parametrize("status,verdict", [(200, "ok"), (204, "ok"), (429, "retry"), (500, "retry"), (503, "retry"),
                                            (400, "reject"), (409, "reject"), (413, "reject"), (401, "hold"),
                                            (403, "hold"), (404, "hold")])
def test_http_statuses(status: int, verdict: str) -> None:
    assert http.classify(status) == verdict


def test_auth_headers_come_from_the_credential_reference_not_kv() -> None:
    from swtel.agent.credentials import Credentials

    creds = Credentials(env={"SWTEL_CRED_PROM_USERNAME": "u", "SWTEL_CRED_PROM_PASSWORD": "tok"})
    rw = make_output("x", "remote_write", url="http://a/", auth="bearer", credential="prom")
    assert http.auth_header(rw, creds) == {"Authorization": "Bearer tok"}
    v2 = make_output("x", "influx", url="http://a/", auth="bearer", credential="prom", influx_version=2,
                     database="b", org="o")
    assert http.auth_header(v2, creds) == {"Authorization": "Token tok"}
    basic = make_output("x", "remote_write", url="http://a/", auth="basic", credential="prom")
    assert http.auth_header(basic, creds) == {"Authorization": "Basic dTp0b2s="}
    assert b"tok" not in __import__("msgspec").json.encode(basic)


def test_remote_write_does_not_resend_what_the_destination_accepted() -> None:
    """A fetch handed back mid-way and fetched again: only the samples not yet accepted are sent, so
    Prometheus (which refuses a whole request with one sample older than its newest) loses none."""
    counts = Counts()
    enc = RemoteWriteEncoder(Mapper(make_output("x", "remote_write", url="http://a/")), counts, max_samples=2,
                             shards=1)
    t = 1_700_000_000_000_000_000
    fetch = [batch("d", [(IN_OCTETS, 1, t), ("/system/memory/state/physical", 1, t)]),
             batch("d", [(IN_OCTETS, 2, t + 10**9), ("/system/memory/state/physical", 2, t + 10**9)])]
    delivered: dict = {}
    first, _second = enc.encode(fetch, lambda d: (), delivered)
    delivered.update(first.marks)  # the first request was accepted, then the runner stopped
    again = enc.encode(fetch, lambda d: (), delivered)
    assert [b.samples for b in again] == [2] and counts.skipped == {"already_delivered": 2}
    (ts_a, ts_b) = prompb.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(again[0].data))).timeseries
    assert [s.value for s in ts_a.samples] == [2.0] and [s.value for s in ts_b.samples] == [2.0]


def test_decode_skips_what_ingest_cannot_store_and_within_cuts_at_the_tenure_end() -> None:
    """Decoding counts malformed and unstorable batches (``wire.problems``), as ingest dead-letters them;
    which batches are genuine is the lease ledger's verdict (tests/test_outputs_fencing.py). ``within`` cuts
    a stale holder's samples at its tenure's end in microseconds, as storage does."""
    from swtel.hub.outputs.runner import OutputState, decode, within

    class M:
        def __init__(self, b: wire.TelemetryBatch) -> None:
            self.data = wire.encode(b)

    st = OutputState("x", "influx")
    new = wire.TelemetryBatch("d", "a2", 7, 1, "s", [wire.Sample("/p", 1, 1)])
    older = wire.TelemetryBatch("d", "a1", 5, 9, "s", [wire.Sample("/p", 2, 2), wire.Sample("/q", 3, 2)])
    nul = wire.TelemetryBatch("d", "a1", 5, 9, "s", [wire.Sample("/p\x00", 2, 2)])
    assert decode([M(older), M(nul), M(new)], st) == [wire.columnar(older), wire.columnar(new)]  # type: ignore[list-item]
    assert st.bad_messages == 1 and st.counts.skipped == {}  # an older token is not for decode to judge
    junk = M(new)
    junk.data = b"garbage"
    assert decode([junk], st) == [] and st.bad_messages == 2  # type: ignore[list-item]
    b = wire.TelemetryBatch("d", "a1", 5, 1, "s", [wire.Sample("/p", 1, 1_999), wire.Sample("/p", 2, 2_000),
                                                   wire.Sample("/p", 3, 2_999), wire.Sample("/p", 4, 1_000)])
    assert [v for _p, v, _t in wire.rows(within(wire.columnar(b), 2_500))] == [1, 4]  # 2,000 ns is 2 µs: at the cutoff's µs


@settings(deadline=None)  # timing is not under test (the machine is shared)
@given(st.text(min_size=1, max_size=12), st.sampled_from([
    "/interfaces/interface[name=e1]/state/counters/in-octets", "/components/component[name=CPU]/state/temperature/instant",
    "/system/memory/state/physical", "/a/b[device=x][zone=y]/c", "/network-instances/network-instance[name=default]"
    "/protocols/protocol[identifier=BGP][name=bgp]/bgp/neighbors/neighbor[neighbor-address=10.0.0.1]/state/session-state"]))
def test_labels_cached_per_path_equal_labels_built_per_series(device: str, path: str) -> None:
    """A new series of a known path reuses the path's labels around ``device``: the same bytes and line
    prefix as building them for that series (labels sort by name whatever the device's name)."""
    d = make_output("x", "remote_write", url="http://a/")
    rw, lp = RemoteWriteEncoder(Mapper(d), Counts()), LineEncoder(Mapper(d), Counts())
    m = Mapper(d).metric(path)
    assert m is not None
    for enc in (rw, lp):
        enc._new_series(path, "warm-up", lambda _d: ())  # the path is now cached
    assert rw._new_series(path, device, lambda _d: ())[2] == rw._labels(m, device, ())  # type: ignore[index]
    assert lp._new_series(path, device, lambda _d: ())[0] == LineEncoder._prefix(m, device, ())  # type: ignore[index]
