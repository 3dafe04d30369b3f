"""The alert engine: one pass over every enabled rule, ``await engine.evaluate_once(now)``.

The elected hub calls it periodically; nothing else is needed to run alerting. Safety does not depend on
the election: every transition is a conditional UPDATE (``WHERE id = … AND version = <read>``) committed
in one transaction with its history row and its outbox rows. Two engines evaluating the same instance
both try; exactly one UPDATE matches, the other changes nothing and sends nothing. A hub that dies after
the commit leaves the outbox rows for any notifier to deliver; one that dies before it leaves nothing, and
the next evaluation (by whichever hub) makes the transition again, once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from . import db
from .rules import Rule
from .sources import DataSource, Observation
from .states import State, next_state

log = logging.getLogger("swtel.hub.alerts")

_INSTANCE_COLS = ("id, rule_id, device, path, state, since, value, notified_at, notified, acknowledged, version, "
                  "created_at")


class EvalStats(msgspec.Struct):
    """What one pass did; ``lost`` counts transitions another evaluator made first."""

    rules: int = 0
    series: int = 0
    transitions: int = 0
    notifications: int = 0
    lost: int = 0
    errors: int = 0


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Engine:
    """Evaluates rules from ``source`` against instance state in PostgreSQL (``pool``: an asyncpg pool)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        source: DataSource,
        *,
        resolved_keep_s: float = 900.0,
        on_notify: Callable[[], None] | None = None,
    ) -> None:
        self.pool = pool
        self.source = source
        self.resolved_keep_s = resolved_keep_s
        self.on_notify = on_notify  # e.g. Notifier.wake: deliver at once instead of at the next poll

    async def evaluate_once(self, now: float | None = None) -> EvalStats:
        now = time.time() if now is None else now
        stats = EvalStats()
        async with self.pool.acquire() as conn:
            rules = await db.list_rules(conn, enabled_only=True)
        devices = list(await self.source.devices())
        for rule in rules:
            stats.rules += 1
            try:
                await self._evaluate_rule(rule, devices, now, stats)
            except (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, asyncpg.InterfaceError,
                    OSError):
                raise  # the database is gone: the caller's loop decides when to try again
            except Exception:
                stats.errors += 1
                log.exception("alert rule %s: evaluation failed", rule.name)
        if stats.notifications and self.on_notify is not None:
            self.on_notify()
        return stats

    async def _evaluate_rule(self, rule: Rule, devices: list[Any], now: float, stats: EvalStats) -> None:
        selected = [d.name for d in devices if rule.selects(d.name, d.tags)]
        observations = {(o.device, o.path): o for o in await self.source.samples(rule, selected, now)}
        stats.series += len(observations)
        if rule.condition == "absent":
            # a selected device with no matching series at all is silent on the pattern itself
            seen = {dev for dev, _ in observations}
            for dev in selected:
                if dev not in seen:
                    observations[(dev, rule.path)] = Observation(dev, rule.path, None, None)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_INSTANCE_COLS} FROM alert_instances WHERE rule_id = $1", rule.id)
            instances = {(r["device"], r["path"]): r for r in rows}
            selected_set = set(selected)
            for key in observations.keys() | instances.keys():
                obs, inst = observations.get(key), instances.get(key)
                if obs is None:
                    # no data: a device that left the selection is resolved; otherwise wait and see
                    cond: bool | None = False if key[0] not in selected_set else None
                    value = None
                else:
                    cond, value = self._condition(rule, obs, inst, now), obs.value
                if inst is None:
                    if not cond and not (rule.condition == "absent" and obs is not None and obs.ts is None):
                        continue  # healthy series get no row: rows exist only for what was ever interesting
                    inst = await self._create(conn, rule, key, now)
                state: State = inst["state"]
                target = next_state(state, _ts(inst["since"]) or now, cond, now, rule.for_s, self.resolved_keep_s)
                if target is None:
                    continue
                won, notified = await self._transition(conn, rule, inst, target, value, now)
                if won:
                    stats.transitions += 1
                    stats.notifications += notified
                else:
                    stats.lost += 1

    def _condition(self, rule: Rule, obs: Observation, inst: Any, now: float) -> bool | None:
        silent = None
        if rule.condition == "absent":
            # never heard from: silent since we started watching (the instance was created then)
            ref = obs.ts if obs.ts is not None else (_ts(inst["created_at"]) if inst is not None else None)
            silent = None if ref is None else now - ref
        return rule.holds(obs.value, obs.rate_per_s, silent)

    async def _create(self, conn: asyncpg.Connection, rule: Rule, key: tuple[str, str], now: float) -> Any:
        row = await conn.fetchrow(
            f"""INSERT INTO alert_instances (rule_id, device, path, state, since, created_at)
                VALUES ($1, $2, $3, 'ok', $4, $4)
                ON CONFLICT (rule_id, device, path) DO NOTHING RETURNING {_INSTANCE_COLS}""",
            rule.id, key[0], key[1], _dt(now),
        )
        if row is None:  # another evaluator created it first: work from its row (and its version)
            row = await conn.fetchrow(
                f"SELECT {_INSTANCE_COLS} FROM alert_instances WHERE rule_id = $1 AND device = $2 AND path = $3",
                rule.id, key[0], key[1],
            )
        return row

    async def _transition(
        self, conn: asyncpg.Connection, rule: Rule, inst: Any, target: State, value: float | None, now: float
    ) -> tuple[bool, int]:
        """Make one transition if nobody made another first. Returns (won, notifications queued)."""
        new_episode = target in ("pending", "firing") and inst["state"] in ("ok", "resolved")
        notify = False
        if target == "firing":
            last = _ts(inst["notified_at"])
            notify = last is None or now - last >= rule.cooldown_s
        elif target == "resolved":
            notify = inst["notified"]
        detail = ""
        if target == "firing" and not notify:
            detail = "notification suppressed by cooldown"
        notify = notify and bool(rule.channels)
        at = _dt(now)
        async with conn.transaction():
            row = await conn.fetchrow(
                """UPDATE alert_instances SET
                       state = $3, since = $4, value = COALESCE($5, value), version = version + 1,
                       fired_at = CASE WHEN $3 = 'firing' THEN $4 ELSE fired_at END,
                       resolved_at = CASE WHEN $3 = 'resolved' THEN $4 ELSE resolved_at END,
                       notified = CASE WHEN $3 = 'firing' THEN $6 WHEN $7 THEN false ELSE notified END,
                       notified_at = CASE WHEN $3 = 'firing' AND $6 THEN $4 ELSE notified_at END,
                       acknowledged = acknowledged AND NOT $7,
                       acked_by = CASE WHEN $7 THEN NULL ELSE acked_by END,
                       acked_at = CASE WHEN $7 THEN NULL ELSE acked_at END
                   WHERE id = $1 AND version = $2
                   RETURNING id""",
                inst["id"], inst["version"], target, at, value, notify, new_episode,
            )
            if row is None:
                return False, 0
            history_id = await conn.fetchval(
                """INSERT INTO alert_history (instance_id, instance_version, rule_id, rule_name, device, path,
                                              severity, from_state, to_state, value, at, detail)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id""",
                inst["id"], inst["version"], rule.id, rule.name, inst["device"], inst["path"], rule.severity,
                inst["state"], target, value, at, detail,
            )
            if not notify:
                return True, 0
            payload = {
                "alert_id": inst["id"], "history_id": history_id, "rule": rule.name, "severity": rule.severity,
                "state": target, "device": inst["device"], "path": inst["path"],
                "value": value if value is not None else inst["value"], "condition": rule.describe(),
                "at": at.isoformat(),
            }
            await conn.executemany(
                "INSERT INTO alert_outbox (history_id, channel, kind, payload) VALUES ($1, $2, $3, $4)",
                [(history_id, ch, target, json.dumps(payload)) for ch in rule.channels],
            )
        log.info("alert %s %s → %s on %s %s", rule.name, inst["state"], target, inst["device"], inst["path"])
        return True, len(rule.channels)
