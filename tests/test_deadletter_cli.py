"""``swtel deadletter list|show`` against a real PostgreSQL migrated by `swtel db migrate`'s code."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from support.telemetry import db, migrate
from swtel.hub import deadletter


async def _seed(database_url: str) -> None:
    await migrate(database_url)
    async with db(database_url) as conn:
        await deadletter.add(conn, [
            deadletter.Letter("swtel.telemetry.sw1.interfaces", 7, "token_not_issued", "token 1000002 was never issued",
                              b"\x81\xa1x\x01", device="sw1", agent="a1", token=1_000_002, seq=1),
            deadletter.Letter("swtel.telemetry.sw2.interfaces", 8, "nul_byte", "NUL character in the path of sample 0",
                              b"payload", device="sw\x002", agent="a1", token=2**64, seq=1),
        ])


def test_deadletter_list_and_show(swtel, database_url: str, tmp_path: Path) -> None:
    asyncio.run(_seed(database_url))
    env = {"SWTEL_DATABASE_URL": database_url}
    res = swtel("deadletter", "list", "--json", env=env)
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    assert [r["reason"] for r in rows] == ["nul_byte", "token_not_issued"]
    assert rows[0]["token"] == str(2**64) and rows[0]["device"] == "sw\\x002"  # kept readable, never dropped
    res = swtel("deadletter", "list", "--reason", "token_not_issued", env=env)
    assert res.code == 0 and "1000002" in res.out and "nul_byte" not in res.out, res.out
    out = tmp_path / "p.bin"
    res = swtel("deadletter", "show", str(rows[1]["id"]), "--out", str(out), env=env)
    assert res.code == 0 and out.read_bytes() == b"\x81\xa1x\x01", res.err
    res = swtel("deadletter", "list", "--since", "now-100000000000h", env=env)
    assert res.code == 2 and "since" in res.err and "Traceback" not in res.err, res.err
