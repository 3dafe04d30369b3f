"""PostgreSQL access for alerting: the schema and the rule/channel store.

The engine, the notifier and the CLI share these functions so there is one place that knows the tables.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import asyncpg
import msgspec

from swtel.shared.errors import AlreadyExists, InvalidInput, NotFound

from .rules import Rule, validate, validate_name

# Serialises concurrent ensure_schema() calls (two hubs starting at once) inside PostgreSQL.
_SCHEMA_LOCK = 0x5357_414C  # "SWAL"


def schema_sql() -> str:
    return resources.files(__package__).joinpath("schema.sql").read_text()


async def ensure_schema(conn: asyncpg.Connection) -> None:
    """Create the alert tables if missing (idempotent; serialised by an advisory lock)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(schema_sql())


# ---- rules ---------------------------------------------------------------------------------------------

_RULE_COLS = "id, name, device, tags, path, condition, threshold, for_s, cooldown_s, severity, channels, enabled"


def rule_from_row(row: Any) -> Rule:
    return Rule(
        id=row["id"], name=row["name"], device=row["device"], tags=json.loads(row["tags"]), path=row["path"],
        condition=row["condition"], threshold=row["threshold"], for_s=row["for_s"], cooldown_s=row["cooldown_s"],
        severity=row["severity"], channels=list(row["channels"]), enabled=row["enabled"],
    )


async def add_rule(conn: asyncpg.Connection, rule: Rule) -> Rule:
    validate(rule)
    known = {r["name"] for r in await conn.fetch("SELECT name FROM alert_channels WHERE name = ANY($1)", rule.channels)}
    missing = [c for c in rule.channels if c not in known]
    if missing:
        raise NotFound(f"channel {missing[0]!r} does not exist: add it with `swtel alert channel add`")
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO alert_rules (name, device, tags, path, condition, threshold, for_s, cooldown_s,
                                         severity, channels, enabled)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_RULE_COLS}""",
            rule.name, rule.device, json.dumps(rule.tags), rule.path, rule.condition, rule.threshold, rule.for_s,
            rule.cooldown_s, rule.severity, rule.channels, rule.enabled,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"rule {rule.name!r} already exists") from None
    return rule_from_row(row)


async def list_rules(conn: asyncpg.Connection, *, enabled_only: bool = False) -> list[Rule]:
    where = "WHERE enabled" if enabled_only else ""
    return [rule_from_row(r) for r in await conn.fetch(f"SELECT {_RULE_COLS} FROM alert_rules {where} ORDER BY name")]


async def remove_rule(conn: asyncpg.Connection, name: str) -> None:
    """Delete a rule and its instances; its history stays."""
    if await conn.fetchval("DELETE FROM alert_rules WHERE name = $1 RETURNING id", name) is None:
        raise NotFound(f"rule {name!r} does not exist")


# ---- channels ------------------------------------------------------------------------------------------


async def add_channel(conn: asyncpg.Connection, name: str, kind: str, config: dict[str, Any]) -> None:
    from .channels import validate_channel  # channels imports nothing from here; avoid a cycle at import

    validate_name(name, "channel name")
    validate_channel(kind, config)
    try:
        await conn.execute("INSERT INTO alert_channels (name, kind, config) VALUES ($1, $2, $3)",
                           name, kind, json.dumps(config))
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"channel {name!r} already exists") from None


async def list_channels(conn: asyncpg.Connection) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await conn.fetch("SELECT name, kind, config FROM alert_channels ORDER BY name")
    return [(r["name"], r["kind"], json.loads(r["config"])) for r in rows]


async def remove_channel(conn: asyncpg.Connection, name: str) -> None:
    used = await conn.fetchval("SELECT name FROM alert_rules WHERE $1 = ANY(channels) LIMIT 1", name)
    if used:
        raise InvalidInput(f"channel {name!r} is used by rule {used!r}: remove the rule first")
    if await conn.fetchval("DELETE FROM alert_channels WHERE name = $1 RETURNING name", name) is None:
        raise NotFound(f"channel {name!r} does not exist")


# ---- alerts (instances), acknowledgement, history --------------------------------------------------------


class AlertView(msgspec.Struct):
    """One alert instance as the CLI, the API and the pages show it."""

    id: int
    rule: str
    severity: str
    device: str
    path: str
    state: str
    since: str
    value: float | None
    condition: str
    acknowledged: bool
    acked_by: str | None
    fired_at: str | None
    resolved_at: str | None


class HistoryView(msgspec.Struct):
    id: int
    alert_id: int
    rule: str
    severity: str
    device: str
    path: str
    from_state: str
    to_state: str
    value: float | None
    at: str
    detail: str


def _iso(dt: Any) -> str | None:
    return None if dt is None else dt.isoformat()


async def list_alerts(conn: asyncpg.Connection, *, include_all: bool = False, limit: int = 1000) -> list[AlertView]:
    """Firing and pending alerts (newest first); with ``include_all`` also resolved ones (not plain ok)."""
    states = ["pending", "firing", "resolved"] if include_all else ["pending", "firing"]
    rows = await conn.fetch(
        """SELECT i.id, i.device, i.path, i.state, i.since, i.value, i.acknowledged, i.acked_by, i.fired_at,
                  i.resolved_at, r.name, r.severity, r.condition, r.threshold
           FROM alert_instances i JOIN alert_rules r ON r.id = i.rule_id
           WHERE i.state = ANY($1) ORDER BY i.since DESC, i.id DESC LIMIT $2""",
        states, limit,
    )
    out = []
    for r in rows:
        cond = Rule(name=r["name"], path="/", condition=r["condition"], threshold=r["threshold"]).describe()
        out.append(AlertView(
            id=r["id"], rule=r["name"], severity=r["severity"], device=r["device"], path=r["path"], state=r["state"],
            since=r["since"].isoformat(), value=r["value"], condition=cond, acknowledged=r["acknowledged"],
            acked_by=r["acked_by"], fired_at=_iso(r["fired_at"]), resolved_at=_iso(r["resolved_at"]),
        ))
    return out


async def history(conn: asyncpg.Connection, *, alert_id: int | None = None, limit: int = 200) -> list[HistoryView]:
    rows = await conn.fetch(
        """SELECT id, instance_id, rule_name, severity, device, path, from_state, to_state, value, at, detail
           FROM alert_history WHERE ($1::bigint IS NULL OR instance_id = $1) ORDER BY id DESC LIMIT $2""",
        alert_id, limit,
    )
    return [HistoryView(id=r["id"], alert_id=r["instance_id"], rule=r["rule_name"], severity=r["severity"],
                        device=r["device"], path=r["path"], from_state=r["from_state"], to_state=r["to_state"],
                        value=r["value"], at=r["at"].isoformat(), detail=r["detail"]) for r in rows]


async def acknowledge(conn: asyncpg.Connection, alert_id: int, by: str) -> None:
    """Mark a firing alert acknowledged (once), recorded in the history. Raises on anything else."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE alert_instances SET acknowledged = true, acked_by = $2, acked_at = now(), version = version + 1
               WHERE id = $1 AND state = 'firing' AND NOT acknowledged
               RETURNING id, rule_id, device, path, value, version""",
            alert_id, by,
        )
        if row is None:
            cur = await conn.fetchrow("SELECT state, acknowledged, acked_by FROM alert_instances WHERE id = $1", alert_id)
            if cur is None:
                raise NotFound(f"alert {alert_id} does not exist")
            if cur["acknowledged"] and cur["state"] == "firing":
                raise InvalidInput(f"alert {alert_id} is already acknowledged by {cur['acked_by']}")
            raise InvalidInput(f"alert {alert_id} is {cur['state']}, not firing: only firing alerts can be acknowledged")
        rule = await conn.fetchrow("SELECT name, severity FROM alert_rules WHERE id = $1", row["rule_id"])
        await conn.execute(
            """INSERT INTO alert_history (instance_id, instance_version, rule_id, rule_name, device, path, severity,
                                          from_state, to_state, value, at, detail)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'firing', 'acknowledged', $8, now(), $9)""",
            alert_id, row["version"] - 1, row["rule_id"], rule["name"], row["device"], row["path"], rule["severity"],
            row["value"], f"by {by}",
        )


class OutboxView(msgspec.Struct):
    id: int
    channel: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str
    alert_id: int
    rule: str


async def outbox(conn: asyncpg.Connection, *, limit: int = 200) -> list[OutboxView]:
    rows = await conn.fetch(
        """SELECT id, channel, kind, status, attempts, next_attempt_at, last_error, payload FROM alert_outbox
           ORDER BY id DESC LIMIT $1""", limit)
    out = []
    for r in rows:
        p = json.loads(r["payload"])
        out.append(OutboxView(id=r["id"], channel=r["channel"], kind=r["kind"], status=r["status"],
                              attempts=r["attempts"], next_attempt_at=r["next_attempt_at"].isoformat(),
                              last_error=r["last_error"], alert_id=p["alert_id"], rule=p["rule"]))
    return out


async def prune(conn: asyncpg.Connection, keep_days: int) -> dict[str, int]:
    """Delete delivered (or given-up) notifications and history older than ``keep_days``. History rows a
    pending notification still refers to stay. Each DELETE is one statement: interrupted, it did nothing."""
    r1 = await conn.execute(
        "DELETE FROM alert_outbox WHERE status IN ('sent', 'failed') AND created_at < now() - make_interval(days => $1)",
        keep_days)
    r2 = await conn.execute(
        """DELETE FROM alert_history h WHERE h.at < now() - make_interval(days => $1)
           AND NOT EXISTS (SELECT 1 FROM alert_outbox o WHERE o.history_id = h.id)""", keep_days)
    return {"alert_outbox_pruned": int(r1.split()[-1]), "alert_history_pruned": int(r2.split()[-1])}
