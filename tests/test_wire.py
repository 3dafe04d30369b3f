import msgspec
import pytest

from swtel.shared import wire


def batch(**kw: object) -> wire.TelemetryBatch:
    base = dict(device="r1", agent="a1", token=5, seq=1, subscription="interfaces",
                samples=[wire.Sample("/x/in-octets", 12, 1), wire.Sample("/x/oper-status", "UP", 2),
                         wire.Sample("/x/temp", 41.5, 3), wire.Sample("/x/enabled", True, 4)])
    base.update(kw)
    return wire.TelemetryBatch(**base)  # type: ignore[arg-type]


def test_messages_round_trip_with_typed_values() -> None:
    b = batch()
    out = wire.message_decoder.decode(wire.encode(b))
    assert out == b
    assert [type(s.value) for s in out.samples] == [int, str, float, bool]
    ev = wire.Event(device="r1", agent="a1", kind="session_up", ts=1)
    assert wire.message_decoder.decode(wire.encode(ev)) == ev


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"garbage", msgspec.msgpack.encode({"type": "nope"}),
                                     msgspec.msgpack.encode({"type": "telemetry", "device": 5})])
def test_malformed_payloads_raise_msgspec_errors_only(payload: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        wire.message_decoder.decode(payload)


def test_schema_evolution_new_writer_old_reader_and_back() -> None:
    class BatchV1Plus(msgspec.Struct, tag="telemetry", omit_defaults=True):  # a future writer with a new field
        device: str
        agent: str
        token: int
        seq: int
        subscription: str
        samples: list[wire.Sample]
        v: int = 1
        region: str = "eu"

    newer = msgspec.msgpack.encode(BatchV1Plus("r1", "a1", 1, 1, "s", [], region="us"))
    assert wire.message_decoder.decode(newer).device == "r1"  # unknown field ignored
    older = msgspec.msgpack.encode(batch())
    assert msgspec.msgpack.decode(older, type=BatchV1Plus).region == "eu"  # missing field takes its default


def test_kv_values_are_json_and_hold_no_secret_fields() -> None:
    dev = wire.Device(name="r1", address="10.0.0.1", port=22, protocol="ssh", credential="lab")
    assert wire.device_decoder.decode(wire.encode_kv(dev)) == dev
    assert not {"password", "secret", "key"} & set(msgspec.structs.asdict(dev))
