"""Rolling upgrades of the telemetry batch (shared/wire.py: v1 rows → v2 columns, issue 20).

A new hub stores old agents' v1 batches and new agents' v2 batches alike; an old (v1) hub, run from the
last commit that wrote v1, refuses a v2 batch as a newer version (``unknown_version``), not as a
malformed message and not as an empty batch it would acknowledge and lose.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient

from support.telemetry import db, hub_settings, migrate, publish
from support.waits import eventually
from swtel.hub.app import create_app
from swtel.shared import wire

REPO = Path(__file__).resolve().parents[1]


def samples(ts: int) -> list[wire.Sample]:
    """Two notifications (two timestamps) with a leaf in both: every value kind, and a path that repeats."""
    a, b = ts, ts + 10_000_000_000
    ifc = "/interfaces/interface[name=Ethernet1]/state"
    return [wire.Sample(f"{ifc}/counters/in-octets", 2**64 - 1, a), wire.Sample(f"{ifc}/oper-status", "UP", a),
            wire.Sample("/system/state/temp", 41.5, a), wire.Sample(f"{ifc}/enabled", True, a),
            wire.Sample(f"{ifc}/description", None, a),  # a delete: counted as null_value by both
            wire.Sample(f"{ifc}/counters/in-octets", 7, b), wire.Sample(f"{ifc}/oper-status", "DOWN", b)]


def v2(device: str, seq: int, rows: list[wire.Sample], token: int = 0) -> wire.TelemetryBatch:
    return wire.telemetry(device, "a1", token, seq, "interfaces", wire.Columns.of(rows))


def test_v2_is_columns_with_each_path_once_and_reads_back_as_the_v1_samples() -> None:
    rows = samples(1_000)
    b = v2("sw1", 1, rows, token=3)
    raw = msgspec.msgpack.decode(wire.encode(b))
    assert raw["v"] == 2 and raw["samples"] == []  # both written: what an old reader needs to refuse it clearly
    assert raw["times"] == [1_000, 10_000_001_000] and raw["runs"] == [5, 2]
    assert len(raw["paths"]) == 5 and raw["index"] == [0, 1, 2, 3, 4, 0, 1]  # the repeated leaves by index
    old = wire.message_decoder.decode(wire.encode(wire.TelemetryBatch("sw1", "a1", 3, 1, "interfaces", rows)))
    new = wire.message_decoder.decode(wire.encode(b))
    assert wire.samples_of(old) == wire.samples_of(new) == rows
    one_run = wire.telemetry("sw1", "a1", 3, 2, "interfaces", wire.Columns.of(rows[:5]))
    assert one_run.index == [] and one_run.paths == [s.path for s in rows[:5]]  # no index when nothing repeats


@pytest.mark.parametrize(("change", "detail"), [
    ({"runs": [4, 2]}, "runs cover 6 of 7 values"),
    ({"times": [1]}, "1 timestamps"),
    ({"index": [0, 1, 2, 3, 4, 0, 9]}, "a path index outside"),
    ({"index": [0, 1]}, "2 path indexes for 7 values"),
    ({"runs": [8, -1]}, "a run of fewer than one value"),
])
def test_columns_that_do_not_fit_together_are_refused_with_their_reason(change: dict, detail: str) -> None:
    b = msgspec.structs.replace(v2("sw1", 1, samples(1_000), token=3), **change)
    b = wire.message_decoder.decode(wire.encode(b))
    reason, text = wire.problems(b)  # type: ignore[misc]
    assert reason == "malformed" and detail in text
    with pytest.raises(ValueError, match=detail.split(" ")[0]):
        wire.columnar(b)


def test_problems_finds_a_nul_or_overlong_path_in_the_columns() -> None:
    bad = v2("sw1", 1, [wire.Sample("/a\x00b", 1, 1)], token=3)
    assert wire.problems(bad) == ("nul_byte", "NUL character in path 0: '/a\\x00b'")
    long = v2("sw1", 1, [wire.Sample("/x", 1, 1), wire.Sample("/" + "y" * 2000, 1, 1)], token=3)
    assert wire.problems(long) == ("too_long", f"path 1 longer than {wire.MAX_PATH_BYTES} bytes")


@pytest.mark.asyncio
async def test_a_hub_stores_v1_and_v2_batches_alike(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url, hub_fetch_batch=10), auth=False)
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    ts = time.time_ns() - 60_000_000_000
    try:
        async with AsyncTestClient(app) as client:
            rows = samples(ts)
            await publish(js, wire.TelemetryBatch("old-agent.dc1", "a1", 0, 1, "interfaces", rows))  # an old agent
            await publish(js, v2("new-agent.dc1", 1, rows))

            async def stored() -> dict[str, list[tuple]] | None:
                async with db(database_url) as conn:
                    got = {}
                    for dev in ("old-agent.dc1", "new-agent.dc1"):
                        got[dev] = [tuple(r) for r in await conn.fetch(
                            "SELECT s.name, p.time, p.value::text FROM points p JOIN series s ON s.id = p.series_id "
                            "WHERE s.device = $1 UNION ALL "
                            "SELECT s.name, t.time, t.value FROM states t JOIN series s ON s.id = t.series_id "
                            "WHERE s.device = $1 ORDER BY 1, 2", dev)]
                return got if all(len(v) == 6 for v in got.values()) else None

            got = await eventually(stored, timeout=20, what="six rows stored for each device")
            assert got["old-agent.dc1"] == got["new-agent.dc1"]
            assert sorted(r[2] for r in got["new-agent.dc1"]) == sorted(["1.8446744073709552e+19", "7", "1", "UP",
                                                                         "DOWN", "41.5"])

            async def counted() -> str | None:
                text = (await client.get("/metrics")).text
                return text if 'reason="null_value"} 2' in text else None

            metrics = await eventually(counted, timeout=10, what="one null_value drop per batch")
            assert "unknown_version" not in metrics and 'reason="malformed"' not in metrics
    finally:
        await nc.close()


# ---- an old hub, run from the last commit that wrote v1 ------------------------------------------------

OLD_HUB = r"""
import asyncio, json, sys
root = sys.argv[1]
from nats.aio.msg import Msg
from swtel.shared import wire
from swtel.hub.ingest import Ingest
assert wire.__file__.startswith(root) and wire.TELEMETRY_VERSION == 1, (wire.__file__, wire.TELEMETRY_VERSION)

class ReachedFencing(Exception):
    pass

class Ledger:  # past every check of the message itself: the batch would go on to fencing and storage
    async def verdicts(self, keys):
        raise ReachedFencing

async def main():
    out = []
    for payload in json.load(sys.stdin):
        ingest = Ingest.__new__(Ingest)  # the old hub's own _handle_telemetry, without NATS or a database
        ingest.ledger = Ledger()
        letters = []
        async def keep(pairs):
            letters.extend(x for _, x in pairs)
        ingest._dead_letters = keep
        try:
            await ingest._handle_telemetry([Msg(None, subject="swtel.telemetry.sw1.interfaces", data=bytes.fromhex(payload),
                                                reply="$JS.ACK.SWTEL_TELEMETRY.hub.1.5.5.1700000000000000000.0")])
            out.append([[x.reason, x.detail] for x in letters])
        except ReachedFencing:
            out.append("accepted")
    print(json.dumps(out))

asyncio.run(main())
"""


def old_tree(dest: Path) -> Path:
    """``shared/`` and ``hub/`` as of the last commit with telemetry v1, laid out as the ``swtel`` package."""
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("needs git and this checkout's history (the old hub is taken from it)")
    found = subprocess.run([git, "-C", str(REPO), "log", "-1", "--format=%H", "-S", "TELEMETRY_VERSION = 1",
                            "--", "shared/wire.py"], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        pytest.skip(f"no commit that changed TELEMETRY_VERSION from 1 in this history: {found.stderr.strip()}")
    tar = subprocess.run([git, "-C", str(REPO), "archive", "--format=tar", f"{found.stdout.strip()}^", "shared", "hub"],
                         capture_output=True)
    if tar.returncode != 0:  # a shallow clone may not hold the commit before
        pytest.skip(f"the last v1 commit is not in this clone: {tar.stderr.decode(errors='replace').strip()}")
    pkg = dest / "swtel"
    pkg.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(pkg, filter="data")
    return dest


def test_an_old_hub_refuses_a_v2_batch_as_a_newer_version(tmp_path: Path) -> None:
    root = old_tree(tmp_path)
    rows = samples(time.time_ns())
    payloads = [wire.encode(wire.TelemetryBatch("sw1", "a1", 3, 1, "interfaces", rows)),  # v1: it goes on
                wire.encode(v2("sw1", 2, rows, token=3))]
    env = {**os.environ, "PYTHONPATH": str(root)}  # the old swtel package ahead of this checkout's
    r = subprocess.run([sys.executable, "-c", OLD_HUB, str(root)], input=json.dumps([p.hex() for p in payloads]),
                       capture_output=True, text=True, env=env, cwd=root, timeout=60)
    assert r.returncode == 0, r.stderr
    v1_result, v2_result = json.loads(r.stdout)
    assert v1_result == "accepted"
    assert v2_result == [["unknown_version", "telemetry v2; this hub reads v1"]]
