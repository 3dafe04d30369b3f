"""Device facts (discovery) and device status (down/up with hysteresis) in the database.

The agent decides when a device is down (``device_down`` after ``device_down_after`` consecutive failed
attempts, ``device_up`` at the next success); the hub only records it, in ``device_status``. A device
whose lease moves to another agent starts that agent's count afresh, so ``session_up`` (a session that
answered) also counts as up. Writes are idempotent and ordered by the event's time: a redelivered or
late event never overwrites a newer state. ``device_facts`` keeps the latest discovery per device.

Migration 4 creates both tables (``hub/storage/schema.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from swtel.shared import wire

SCHEMA = """
CREATE TABLE IF NOT EXISTS device_facts (
    device text PRIMARY KEY,
    protocol text NOT NULL,
    facts jsonb NOT NULL,             -- wire.DeviceFacts without device/agent/token/ts
    discovered_at timestamptz NOT NULL,
    agent text NOT NULL,
    token bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS device_status (
    device text PRIMARY KEY,
    down boolean NOT NULL,
    since timestamptz NOT NULL,       -- time of the event that set this state
    agent text NOT NULL,
    detail text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS device_status_down ON device_status (device) WHERE down;
"""

DOWN, UP = "device_down", "device_up"
UP_KINDS = (UP, "session_up")
WATCHED = (DOWN, *UP_KINDS)


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


async def record(conn: asyncpg.Connection, facts: list[wire.DeviceFacts], events: list[wire.Event]) -> int:
    """Store facts and status transitions; returns how many rows changed."""
    changed = 0
    for f in facts:
        body = msgspec.json.encode({k: v for k, v in msgspec.structs.asdict(f).items()
                                    if k not in ("device", "agent", "token", "ts", "v")}).decode()
        r = await conn.execute(
            "INSERT INTO device_facts (device, protocol, facts, discovered_at, agent, token) "
            "VALUES ($1, $2, $3::jsonb, $4, $5, $6) ON CONFLICT (device) DO UPDATE SET "
            "protocol = EXCLUDED.protocol, facts = EXCLUDED.facts, discovered_at = EXCLUDED.discovered_at, "
            "agent = EXCLUDED.agent, token = EXCLUDED.token, stored_at = now() "
            "WHERE device_facts.discovered_at < EXCLUDED.discovered_at",
            f.device, f.protocol, body, _dt(f.ts), f.agent, f.token)
        changed += r.endswith(" 1")
    for e in sorted((e for e in events if e.kind == DOWN or e.kind in UP_KINDS), key=lambda e: e.ts):
        down = e.kind == DOWN
        if not down:  # an up only matters for a device recorded down: no row per session_up
            r = await conn.execute(
                "UPDATE device_status SET down = false, since = $2, agent = $3, detail = $4 "
                "WHERE device = $1 AND down AND since <= $2", e.device, _dt(e.ts), e.agent, e.detail)
        else:
            r = await conn.execute(
                "INSERT INTO device_status (device, down, since, agent, detail) VALUES ($1, true, $2, $3, $4) "
                "ON CONFLICT (device) DO UPDATE SET down = true, since = EXCLUDED.since, agent = EXCLUDED.agent, "
                "detail = EXCLUDED.detail WHERE device_status.since <= EXCLUDED.since",
                e.device, _dt(e.ts), e.agent, e.detail)
        changed += r.endswith(" 1")
    return changed


async def down_devices(pool: asyncpg.Pool) -> set[str]:
    """Devices their agent currently reports down (the alert engine's ``absent`` hook)."""
    async with pool.acquire() as conn:
        return {r["device"] for r in await conn.fetch("SELECT device FROM device_status WHERE down")}


async def device_status(conn: asyncpg.Connection, device: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT down, since, agent, detail FROM device_status WHERE device = $1", device)
    if row is None:
        return None
    return {"down": row["down"], "since": row["since"].isoformat(), "agent": row["agent"], "detail": row["detail"]}


async def get_facts(conn: asyncpg.Connection, device: str) -> dict[str, Any] | None:
    """The latest facts of a device as one JSON-ready dict, or None when never discovered."""
    row = await conn.fetchrow(
        "SELECT protocol, facts::text AS facts, discovered_at, agent, token FROM device_facts WHERE device = $1",
        device)
    if row is None:
        return None
    return {"device": device, **msgspec.json.decode(row["facts"]), "protocol": row["protocol"],
            "discovered_at": row["discovered_at"].isoformat(), "agent": row["agent"], "token": row["token"]}
