"""Dead letters: messages the hub will not store, kept aside with their reason for inspection.

A message lands here instead of in ``points``/``states`` when it is malformed or of an unknown kind, when
validation at decode refuses it (NUL bytes, integers out of range: shared/wire.py ``problems``), when its
lease token is not genuine (hub/fencing.py), or when the database refuses it even alone (the rest of its
fetch is stored: hub/ingest.py isolates it by bisection). Rows keep the raw payload (up to
``PAYLOAD_LIMIT`` bytes) and are pruned after ``dead_letter_days`` by the hub's maintenance. Read them with
``GET /api/deadletters`` or ``swtel deadletter list``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

PAYLOAD_LIMIT = 65_536

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    subject text NOT NULL,
    stream_seq bigint NOT NULL DEFAULT 0,
    device text NOT NULL DEFAULT '',
    agent text NOT NULL DEFAULT '',
    token numeric,                  -- numeric: a forged token may not fit a bigint
    seq numeric,
    reason text NOT NULL,
    detail text NOT NULL DEFAULT '',
    payload bytea NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dead_letters_at ON dead_letters (at);
"""

# Forged and unverifiable tokens are also raised as events (kind below) so they show with the device.
FORGED_EVENT = "forged_token"
TOKEN_REASONS = frozenset({"token_not_issued", "token_other_device", "token_not_a_claim", "token_wrong_agent",
                           "token_unverifiable"})


def clean(text: str, limit: int = 1024) -> str:
    """Text PostgreSQL accepts (no NUL), bounded."""
    return text.replace("\x00", "\\x00")[:limit]


@dataclass
class Letter:
    subject: str
    stream_seq: int
    reason: str
    detail: str
    payload: bytes
    device: str = ""
    agent: str = ""
    token: int | None = None
    seq: int | None = None


async def add(conn: asyncpg.Connection | asyncpg.Pool, letters: list[Letter]) -> None:
    await conn.executemany(
        "INSERT INTO dead_letters (subject, stream_seq, device, agent, token, seq, reason, detail, payload) "
        "VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7, $8, $9)",
        [(clean(x.subject), x.stream_seq, clean(x.device, 256), clean(x.agent, 256),
          None if x.token is None else str(x.token), None if x.seq is None else str(x.seq),
          x.reason, clean(x.detail), x.payload[:PAYLOAD_LIMIT]) for x in letters],
    )


async def events(conn: asyncpg.Connection | asyncpg.Pool, letters: list[Letter]) -> None:
    """Forged or unverifiable tokens, raised as device events (``events`` table, kind ``forged_token``)."""
    rows = [(clean(x.device, 256), clean(x.agent, 256), f"{x.reason}: {clean(x.detail, 512)}")
            for x in letters if x.reason in TOKEN_REASONS]
    if rows:
        await conn.executemany(
            "INSERT INTO events (time, device, agent, kind, detail) VALUES (clock_timestamp(), $1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING", [(d, a, FORGED_EVENT, detail) for d, a, detail in rows])


async def listing(pool: asyncpg.Pool, *, limit: int, reason: str | None, device: str | None,
                  since: datetime | None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, at, subject, stream_seq, device, agent, token::text AS token, seq::text AS seq, reason, detail, "
        "octet_length(payload) AS payload_bytes FROM dead_letters "
        "WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR device = $2) "
        "AND ($3::timestamptz IS NULL OR at >= $3) ORDER BY id DESC LIMIT $4",
        reason, device, since, limit)
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {r["reason"]: r["n"] for r in await pool.fetch("SELECT reason, count(*) AS n FROM dead_letters GROUP BY reason")}


async def payload(pool: asyncpg.Pool, letter_id: int) -> bytes | None:
    return await pool.fetchval("SELECT payload FROM dead_letters WHERE id = $1", letter_id)


async def prune(conn: asyncpg.Connection, days: int) -> int:
    r = await conn.execute("DELETE FROM dead_letters WHERE at < now() - make_interval(days => $1)", days)
    return int(r.split()[-1])
