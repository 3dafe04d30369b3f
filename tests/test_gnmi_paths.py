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
    """Subscribe streams are read as SubscribeResponseRaw (the Notification as bytes): same samples as the
    gnmi_pb2 parse, sync_response and error as they were, and a Path that is no Path is a malformed
    notification (ValueError, counted by the session), not an internal error."""
    import pytest

    from swtel.agent.collectors.gnmi import NotificationBytes, SubscribeResponseRaw, decode_notification

    n = gnmi_pb2.Notification(timestamp=5, prefix=gp.to_proto("/interfaces/interface[name=Ethernet2]"))
    n.update.add(path=gp.to_proto("/state/counters/in-octets"), val=gnmi_pb2.TypedValue(uint_val=1))
    n.update.add(path=gp.to_proto("/state/description"), val=gnmi_pb2.TypedValue(string_val="x"))
    n.delete.append(gp.to_proto("/config/mtu"))
    fast = SubscribeResponseRaw.FromString(gnmi_pb2.SubscribeResponse(update=n).SerializeToString())
    assert fast.WhichOneof("response") == "update"
    via_bytes = wire.Columns()
    decode_notification(fast.update, via_bytes)
    via_gnmi = wire.Columns()
    decode_notification(n, via_gnmi)
    assert list(wire.rows(via_bytes)) == list(wire.rows(via_gnmi)) and len(via_bytes) == 3
    sync = SubscribeResponseRaw.FromString(gnmi_pb2.SubscribeResponse(sync_response=True).SerializeToString())
    assert sync.WhichOneof("response") == "sync_response"
    err = SubscribeResponseRaw.FromString(
        gnmi_pb2.SubscribeResponse(error=gnmi_pb2.Error(message="boom")).SerializeToString())
    assert err.WhichOneof("response") == "error" and err.error.message == "boom"
    garbage = b"\x0a\xff"  # field 1 (elem, length-delimited) claiming 127+ bytes that are not there
    as_bytes = NotificationBytes.FromString(fast.update)  # the one-by-one decode's view
    bad = NotificationBytes(timestamp=1, update=[as_bytes.update[0].__class__(path=garbage)])
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


# ---- the counters fast path (NotificationRaw, issue 20) -----------------------------------------------

_KINDS = {  # one TypedValue of every kind, and the legacy Value
    "string_val": gnmi_pb2.TypedValue(string_val="UP"),
    "int_val": gnmi_pb2.TypedValue(int_val=-5),
    "uint_val": gnmi_pb2.TypedValue(uint_val=2**64 - 1),
    "uint_val 0": gnmi_pb2.TypedValue(uint_val=0),
    "bool_val": gnmi_pb2.TypedValue(bool_val=True),
    "bytes_val": gnmi_pb2.TypedValue(bytes_val=b"\x00\x01"),
    "float_val": gnmi_pb2.TypedValue(float_val=1.5),
    "double_val": gnmi_pb2.TypedValue(double_val=2.25),
    "decimal_val": gnmi_pb2.TypedValue(decimal_val=gnmi_pb2.Decimal64(digits=12345, precision=2)),
    "leaflist_val": gnmi_pb2.TypedValue(leaflist_val=gnmi_pb2.ScalarArray(
        element=[gnmi_pb2.TypedValue(string_val="a"), gnmi_pb2.TypedValue(uint_val=3)])),
    "any_val": gnmi_pb2.TypedValue(any_val={"type_url": "x/y", "value": b"z"}),
    "json_val": gnmi_pb2.TypedValue(json_val=b'{"a": 1, "b": {"c": "2"}}'),
    "json_ietf_val": gnmi_pb2.TypedValue(json_ietf_val=b'{"m:in-octets": "9"}'),
    "ascii_val": gnmi_pb2.TypedValue(ascii_val="text"),
    "proto_bytes": gnmi_pb2.TypedValue(proto_bytes=b"\x08\x01"),
    "empty": gnmi_pb2.TypedValue(),
    "legacy": gnmi_pb2.Value(value=b"9000", type=gnmi_pb2.JSON),
}


_ONE_BY_ONE = {"json_val", "json_ietf_val", "empty", "legacy"}  # kinds the fast path leaves to the loop


def _notification(kinds: list[str], *, prefix: str = "/interfaces/interface[name=Ethernet1]", deletes: int = 0,
                  long_paths: bool = False) -> gnmi_pb2.Notification:
    n = gnmi_pb2.Notification(timestamp=77, prefix=gp.to_proto(prefix))
    for i, k in enumerate(kinds):
        name = f"leaf{i}" + ("-" + "x" * 150 if long_paths else "")  # a path of more than 127 bytes
        path = gp.to_proto(f"/state/{name}")
        if k == "legacy":
            n.update.add(path=path, value=_KINDS[k])
        elif k == "no path":
            n.update.add(val=gnmi_pb2.TypedValue(uint_val=i))
        elif k == "duplicates":
            n.update.add(path=path, val=gnmi_pb2.TypedValue(uint_val=i), duplicates=3)
        else:
            n.update.add(path=path, val=_KINDS[k])
    for i in range(deletes):
        n.delete.append(gp.to_proto(f"/gone{i}"))
    return n


def _both(n: gnmi_pb2.Notification) -> tuple[list, list, bool]:
    """The samples as the stream decodes them (NotificationRaw), as the one-by-one decoder does
    (NotificationBytes), and whether the counters fast path took the updates."""
    from swtel.agent.collectors import gnmi

    data = gnmi_pb2.SubscribeResponse(update=n).SerializeToString()
    raw = gnmi.SubscribeResponseRaw.FromString(data).update
    assert raw == n.SerializeToString()  # the stream's view: the Notification's bytes
    fast, slow = wire.Columns(), wire.Columns()
    gnmi.decode_notification(raw, fast)
    gnmi.decode_notification(gnmi.NotificationBytes.FromString(raw), slow)
    probe = wire.Columns()
    took = gnmi._decode_fast(raw, len(n.update), {}, n.prefix.SerializeToString(), probe)
    assert took or not probe.paths, "a refused fast path appended samples"
    return list(wire.rows(fast)), list(wire.rows(slow)), took


@pytest.mark.parametrize("kind", sorted(_KINDS))
def test_every_value_kind_decodes_as_the_one_by_one_decoder_does(kind: str) -> None:
    """Alone (many updates of that kind), among counters, and after them: the stream's decode gives what
    the one-by-one decoder gives, and the fast path takes every notification without JSON or legacy
    values or an empty one."""
    for kinds in ([kind] * 5, ["uint_val"] * 3 + [kind] + ["uint_val"] * 3, ["uint_val"] * 6 + [kind]):
        fast, slow, took = _both(_notification(kinds, deletes=1))
        assert fast == slow and len(fast) >= len(kinds)
        assert took == (kind not in _ONE_BY_ONE)


def test_the_fast_path_takes_counters_with_long_paths_duplicates_and_deletes() -> None:
    for n in (_notification(["uint_val"] * 480), _notification(["uint_val"] * 20, long_paths=True),
              _notification(["uint_val", "duplicates", "uint_val 0"], deletes=2), _notification([], deletes=3),
              _notification([])):
        fast, slow, took = _both(n)
        assert took and fast == slow
    fast, _, _ = _both(_notification(["uint_val 0", "uint_val"]))
    assert [v for _, v, _ in fast] == [0, 2**64 - 1]


def test_an_update_without_a_path_leaves_the_fast_path() -> None:
    """The prefix is the whole path: the update's path list is one short, so the fast path declines and the
    one-by-one decoder stamps the value at the prefix."""
    fast, slow, took = _both(_notification(["uint_val", "no path", "uint_val"]))
    assert not took and fast == slow
    assert fast[1][0] == "/interfaces/interface[name=Ethernet1]"


@given(st.lists(st.sampled_from(sorted(_KINDS) + ["no path", "duplicates"]), max_size=12), st.integers(0, 2))
def test_any_mix_of_updates_decodes_as_the_one_by_one_decoder_does(kinds: list[str], deletes: int) -> None:
    fast, slow, took = _both(_notification(kinds, deletes=deletes))
    assert fast == slow
    assert took == (not set(kinds) & (_ONE_BY_ONE | {"no path"}))


def test_an_update_that_is_no_update_is_a_decode_error() -> None:
    """The stream's view leaves the Notification's bytes unparsed until decode: a malformed update raises
    DecodeError there (the session reports "malformed message", as it does for a response grpc cannot
    parse), and so does a Notification that is no Notification."""
    from google.protobuf.message import DecodeError

    from swtel.agent.collectors import gnmi

    for n in (b"\x08\x01\x22\x02\x0a\xff",  # timestamp 1, an update whose path claims 127+ bytes
              b"\x08\x01\x22\x09\x0a\x00\x1a\x05\x0a\x03\xff\xfe\xfd",  # a string_val that is no UTF-8
              b"\x22\xff"):  # an update claiming 127+ bytes
        with pytest.raises(DecodeError):
            gnmi.decode_notification(n, wire.Columns())


def test_a_value_that_repeats_a_oneof_member_is_not_paired_with_a_neighbours_path() -> None:
    """A TypedValue holding string_val then uint_val (legal on the wire, the last one wins, written by no
    encoder) adds an int its first byte does not announce: among other kinds, the fast path must
    decline rather than hand the next counter that int."""
    from swtel.agent.collectors import gnmi

    def update(leaf: str, tv: bytes) -> bytes:
        return gnmi_pb2.Update(path=gp.to_proto(f"/state/{leaf}")).SerializeToString() + b"\x1a" + bytes([len(tv)]) + tv

    updates = [update("a", b"\x0a\x01A\x18\x05"), update("b", b"\x0a\x01B"), update("c", b"\x18\x07")]
    n = b"\x08\x03" + b"".join(b"\x22" + bytes([len(u)]) + u for u in updates)  # timestamp 3, update × 3
    assert not gnmi._decode_fast(n, 3, {}, b"", wire.Columns())
    out = wire.Columns()
    gnmi.decode_notification(n, out)
    assert list(zip(out.paths, out.values)) == [("/state/a", 5), ("/state/b", "B"), ("/state/c", 7)]
