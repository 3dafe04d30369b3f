"""The pure parts of fencing and consumer checks: verdicts from what is known of a lease revision."""

from __future__ import annotations

from nats.js import api

from swtel.hub.fencing import Refusal, Tenure, cutoff_ns, judge
from swtel.hub.ingest import consumer_drift

T = Tenure("sw1", 5, "a1", "i1", 1_000, None)


def test_verdicts() -> None:
    assert judge("sw1", "a1", 5, T, last_revision=9) is T
    assert judge("sw1", "a1", 1_000_005, None, last_revision=9).reason == "token_not_issued"  # type: ignore[union-attr]
    assert judge("sw1", "a1", 0, None, last_revision=9).reason == "token_not_issued"  # type: ignore[union-attr]
    assert judge("sw1", "a2", 5, T, last_revision=9).reason == "token_wrong_agent"  # type: ignore[union-attr]
    assert judge("sw2", "a1", 5, T, last_revision=9).reason == "token_other_device"  # type: ignore[union-attr]
    released = Tenure("sw1", 6, "", "", 2_000, None)
    assert judge("sw1", "a1", 6, released, last_revision=9).reason == "token_not_a_claim"  # type: ignore[union-attr]
    gone = judge("sw1", "a1", 3, None, last_revision=9)
    assert isinstance(gone, Refusal) and gone.reason == "token_unverifiable"


def test_cutoff_is_the_tenure_end_plus_grace() -> None:
    assert cutoff_ns(T, 1.0) is None
    ended = Tenure("sw1", 5, "a1", "i1", 1_000, 10_000_000_000)
    assert cutoff_ns(ended, 1.0) == 11_000_000_000 and cutoff_ns(ended, 0) == 10_000_000_000


def test_consumer_drift_names_what_changed() -> None:
    want = api.ConsumerConfig(durable_name="swtel-hub", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=30.0,
                              max_ack_pending=50_000, max_deliver=-1, filter_subjects=["swtel.telemetry.>"])
    assert consumer_drift(want, want) == []
    have = api.ConsumerConfig(durable_name="swtel-hub", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=30.0,
                              max_ack_pending=50_000, max_deliver=1, filter_subject="swtel.telemetry.>",
                              deliver_subject="_INBOX_agent.x")
    diff = consumer_drift(want, have)
    assert len(diff) == 2 and "push consumer" in diff[0] and "max_deliver 1" in diff[1], diff


def test_validation_at_decode_names_what_postgresql_would_refuse() -> None:
    from swtel.shared import wire

    def batch(**kw: object) -> wire.TelemetryBatch:
        base = dict(device="sw1", agent="a1", token=3, seq=1, subscription="s",
                    samples=[wire.Sample("/a", 1, 1_700_000_000_000_000_000)])
        return wire.TelemetryBatch(**{**base, **kw})  # type: ignore[arg-type]

    assert wire.problems(batch()) is None
    assert wire.problems(batch(samples=[wire.Sample("/a\x00b", 1, 1)]))[0] == "nul_byte"  # type: ignore[index]
    assert wire.problems(batch(device="sw\x001"))[0] == "nul_byte"  # type: ignore[index]
    assert wire.problems(batch(device="bad name"))[0] == "bad_name"  # type: ignore[index]
    assert wire.problems(batch(token=2**63))[0] == "int_range"  # type: ignore[index]
    assert wire.problems(batch(seq=0))[0] == "int_range"  # type: ignore[index]
    assert wire.problems(batch(samples=[wire.Sample("/" + "x" * 2000, 1, 1)]))[0] == "too_long"  # type: ignore[index]
    assert wire.problems(batch(samples=[wire.Sample("/a", "UP\x00", 1)])) is None  # NUL in a value: stripped later
