"""gNMI path strings in both notations, and typed value decoding."""

from __future__ import annotations

import json

import pytest
from gnmi_pb import gnmi_pb2
from hypothesis import given
from hypothesis import strategies as st

from swtel.agent.collectors import gnmi_paths as gp
from swtel.shared import wire
from swtel.shared.errors import InvalidInput


def test_parse_keys_origin_and_slashes_inside_keys() -> None:
    origin, elems = gp.parse("openconfig:/interfaces/interface[name=Ethernet1/1]/state/counters")
    assert origin == "openconfig"
    assert elems == (("interfaces", ()), ("interface", (("name", "Ethernet1/1"),)), ("state", ()), ("counters", ()))


def test_format_sorts_keys_and_escapes() -> None:
    _, elems = gp.parse("/a/b[z=1][a=x\\]y]/c")
    assert elems[1] == ("b", (("a", "x]y"), ("z", "1")))
    assert gp.format_elems(elems) == "/a/b[a=x\\]y][z=1]/c"
    assert gp.format_elems(elems, "oc") == "oc:/a/b[a=x\\]y][z=1]/c"


@pytest.mark.parametrize("bad", ["/a/b[name=x", "/a/[k=v]", "/a/b[=v]", "/a/b[k]"])
def test_bad_paths_are_one_line_errors(bad: str) -> None:
    with pytest.raises(InvalidInput, match="path"):
        gp.parse(bad)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
values = st.text(alphabet="abcXYZ019/.:-_ ]\\[=", min_size=0, max_size=10)
elems_st = st.lists(
    st.tuples(names, st.dictionaries(names, values, max_size=2).map(lambda d: tuple(sorted(d.items())))),
    min_size=1, max_size=5,
).map(tuple)


@given(elems_st)
def test_format_parse_round_trip(elems: gp.Elems) -> None:
    assert gp.parse(gp.format_elems(elems))[1] == elems


def test_both_notations_give_the_same_string() -> None:
    new = gp.to_proto("/interfaces/interface[name=eth0]/state/oper-status")
    old = gnmi_pb2.Path(element=["interfaces", "interface[name=eth0]", "state", "oper-status"])
    assert gp.path_string((), new) == gp.path_string((), old) == "/interfaces/interface[name=eth0]/state/oper-status"
    prefix = gp.elems_of(gp.to_proto("/interfaces/interface[name=eth0]"))
    assert gp.path_string(prefix, gnmi_pb2.Path(element=["state", "oper-status"])).endswith("[name=eth0]/state/oper-status")


@pytest.mark.parametrize(
    ("tv", "expected"),
    [
        (gnmi_pb2.TypedValue(uint_val=2**63 + 5), 2**63 + 5),
        (gnmi_pb2.TypedValue(int_val=-3), -3),
        (gnmi_pb2.TypedValue(string_val="UP"), "UP"),
        (gnmi_pb2.TypedValue(bool_val=True), True),
        (gnmi_pb2.TypedValue(double_val=42.5), 42.5),
        (gnmi_pb2.TypedValue(float_val=0.1), 0.1),
        (gnmi_pb2.TypedValue(decimal_val=gnmi_pb2.Decimal64(digits=12345, precision=2)), 123.45),
        (gnmi_pb2.TypedValue(ascii_val="x"), "x"),
        (gnmi_pb2.TypedValue(bytes_val=b"\x00\x01"), "AAE="),
        (gnmi_pb2.TypedValue(), None),
    ],
)
def test_decode_typed_values(tv: gnmi_pb2.TypedValue, expected: object) -> None:
    assert gp.decode_value(tv) == expected


def test_leaflist_becomes_a_json_string() -> None:
    tv = gnmi_pb2.TypedValue(leaflist_val=gnmi_pb2.ScalarArray(element=[gnmi_pb2.TypedValue(string_val="a"),
                                                                        gnmi_pb2.TypedValue(uint_val=2)]))
    assert json.loads(gp.decode_value(tv)) == ["a", 2]


def test_json_ietf_container_flattens_with_module_prefixes_stripped() -> None:
    body = {"openconfig-interfaces:in-octets": "18446744073709551615", "oper-status": "UP", "mtu": 9000,
            "nested": {"x:y": True}, "name": "123abc"}
    tv = gnmi_pb2.TypedValue(json_ietf_val=json.dumps(body).encode())
    out: list[tuple[str, object]] = []
    gp.flatten_json("/i", gp.decode_value(tv), out)
    assert dict(out) == {"/i/in-octets": 18446744073709551615, "/i/oper-status": "UP", "/i/mtu": 9000,
                         "/i/nested/y": True, "/i/name": "123abc"}


def test_notification_with_prefix_both_notations_json_legacy_value_and_deletes() -> None:
    from swtel.agent.collectors.gnmi import decode_notification

    n = gnmi_pb2.Notification(timestamp=123, prefix=gp.to_proto("/interfaces/interface[name=Ethernet1/1]"))
    n.update.add(path=gp.to_proto("/state/counters/in-octets"), val=gnmi_pb2.TypedValue(uint_val=7))
    n.update.add(path=gnmi_pb2.Path(element=["state", "oper-status"]), val=gnmi_pb2.TypedValue(string_val="UP"))
    n.update.add(path=gp.to_proto("/state/counters"),
                 val=gnmi_pb2.TypedValue(json_ietf_val=b'{"openconfig-interfaces:out-octets":"9"}'))
    n.update.add(path=gp.to_proto("/config/mtu"), value=gnmi_pb2.Value(value=b"9000", type=gnmi_pb2.JSON))
    n.delete.append(gp.to_proto("/subinterfaces/subinterface[index=0]"))
    out = wire.Columns()
    decode_notification(n, out)
    base = "/interfaces/interface[name=Ethernet1/1]"
    assert (out.times, out.runs) == ([123], [5])  # one notification: one timestamp, columns straight from the loop
    assert list(wire.rows(out)) == [
        (f"{base}/state/counters/in-octets", 7, 123),
        (f"{base}/state/oper-status", "UP", 123),
        (f"{base}/state/counters/out-octets", 9, 123),
        (f"{base}/config/mtu", 9000, 123),
        (f"{base}/subinterfaces/subinterface[index=0]", None, 123),
    ]


def test_a_notification_without_timestamp_gets_the_receive_time() -> None:
    import time

    from swtel.agent.collectors.gnmi import decode_notification

    n = gnmi_pb2.Notification()
    n.update.add(path=gp.to_proto("/system/state/hostname"), val=gnmi_pb2.TypedValue(string_val="sw1"))
    out = wire.Columns()
    before = time.time_ns()
    decode_notification(n, out)
    assert out.paths == ["/system/state/hostname"] and out.times[0] >= before


def test_the_bytes_view_reads_the_wire_of_a_subscribe_response_as_gnmi_does() -> None:
    """Subscribe streams are read as SubscribeResponseBytes (Path fields as bytes): same samples as the
    gnmi_pb2 parse, sync_response and error as they were, and a Path that is no Path is a malformed
    notification (ValueError, counted by the session), not an internal error."""
    import pytest

    from swtel.agent.collectors.gnmi import SubscribeResponseBytes, decode_notification

    n = gnmi_pb2.Notification(timestamp=5, prefix=gp.to_proto("/interfaces/interface[name=Ethernet2]"))
    n.update.add(path=gp.to_proto("/state/counters/in-octets"), val=gnmi_pb2.TypedValue(uint_val=1))
    n.update.add(path=gp.to_proto("/state/description"), val=gnmi_pb2.TypedValue(string_val="x"))
    n.delete.append(gp.to_proto("/config/mtu"))
    fast = SubscribeResponseBytes.FromString(gnmi_pb2.SubscribeResponse(update=n).SerializeToString())
    assert fast.WhichOneof("response") == "update"
    via_bytes = wire.Columns()
    decode_notification(fast.update, via_bytes)
    via_gnmi = wire.Columns()
    decode_notification(n, via_gnmi)
    assert list(wire.rows(via_bytes)) == list(wire.rows(via_gnmi)) and len(via_bytes) == 3
    sync = SubscribeResponseBytes.FromString(gnmi_pb2.SubscribeResponse(sync_response=True).SerializeToString())
    assert sync.WhichOneof("response") == "sync_response"
    err = SubscribeResponseBytes.FromString(
        gnmi_pb2.SubscribeResponse(error=gnmi_pb2.Error(message="boom")).SerializeToString())
    assert err.WhichOneof("response") == "error" and err.error.message == "boom"
    garbage = b"\x0a\xff"  # field 1 (elem, length-delimited) claiming 127+ bytes that are not there
    bad = fast.update.__class__(timestamp=1, update=[fast.update.update[0].__class__(path=garbage)])
    with pytest.raises(ValueError):
        decode_notification(bad, wire.Columns())


def test_sessions_with_the_same_subscription_paths_share_one_matcher() -> None:
    """Each sample path is parsed once per agent, not once per device (start-up CPU, issue 20)."""
    from swtel.agent.collectors.gnmi import _shared_matcher

    a = _shared_matcher(["/interfaces/interface/state/counters"])
    assert _shared_matcher(["/interfaces/interface/state/counters"]) is a
    assert _shared_matcher(["/system"]) is not a
    assert a("/interfaces/interface[name=Ethernet1]/state/counters/in-octets")
    assert not a("/system/state/hostname")
