"""The alert engine: one pass over every enabled rule, ``await engine.evaluate_once(now)``.

The elected hub calls it periodically; nothing else is needed to run alerting. Safety does not depend on
the election: every transition is a conditional UPDATE (``WHERE id = … AND version = <read>``) committed
in one transaction with its history row and its outbox rows (set-wise, up to ``_CHUNK`` transitions of a
rule per transaction: one commit per storm, not one per series). Two engines evaluating the same instance
both try; exactly one UPDATE matches, the other changes nothing and sends nothing. Rows are locked in id
order with SKIP LOCKED, so two evaluators never wait on (or deadlock with) each other. A hub that dies after
the commit leaves the outbox rows for any notifier to deliver; one that dies before it leaves nothing, and
the next evaluation (by whichever hub) makes the transition again, once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

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


class _Plan(NamedTuple):
    id: int
    version: int
    from_state: str
    target: State
    value: float | None
    notify: bool
    new_episode: bool
    detail: str
    device: str
    path: str
    shown_value: float | None


_CHUNK = 2000  # transitions per transaction: bounded statement size and lock time


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
        reporting: set[tuple[str, str]] = set()
        if rule.condition == "absent":
            # a selected device with no matching series at all is silent on the pattern itself; once it
            # reports a matching series again, that device-level instance is no longer silent
            seen = {dev for dev, _ in observations}
            for dev in selected:
                if dev not in seen:
                    observations[(dev, rule.path)] = Observation(dev, rule.path, None, None)
                elif (dev, rule.path) not in observations:
                    reporting.add((dev, rule.path))
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_INSTANCE_COLS} FROM alert_instances WHERE rule_id = $1", rule.id)
            instances = {(r["device"], r["path"]): r for r in rows}
            selected_set = set(selected)
            conds: dict[tuple[str, str], tuple[bool | None, float | None]] = {}
            missing = []
            for key in observations.keys() | instances.keys():
                obs, inst = observations.get(key), instances.get(key)
                if obs is None:
                    # no data: a device that left the selection (or, for absent, reports again) is resolved;
                    # otherwise wait and see
                    conds[key] = (False if key[0] not in selected_set or key in reporting else None, None)
                    continue
                conds[key] = (self._condition(rule, obs, inst, now), obs.value)
                if inst is None and (conds[key][0] or (rule.condition == "absent" and obs.ts is None)):
                    missing.append(key)  # healthy series get no row: rows exist only for what was interesting
            if missing:
                instances.update(await self._create(conn, rule, missing, now))
            plans = []
            for key, inst in instances.items():
                cond, value = conds.get(key, (None, None))
                target = next_state(inst["state"], _ts(inst["since"]) or now, cond, now, rule.for_s,
                                    self.resolved_keep_s)
                if target is not None:
                    plans.append(self._plan(rule, inst, target, value, now))
            plans.sort(key=lambda p: p.id)
            for i in range(0, len(plans), _CHUNK):
                won, notified = await self._apply(conn, rule, plans[i:i + _CHUNK], now)
                stats.transitions += won
                stats.notifications += notified
                stats.lost += len(plans[i:i + _CHUNK]) - won

    def _condition(self, rule: Rule, obs: Observation, inst: Any, now: float) -> bool | None:
        silent = None
        if rule.condition == "absent":
            # never heard from: silent since we started watching (the instance was created then)
            ref = obs.ts if obs.ts is not None else (_ts(inst["created_at"]) if inst is not None else None)
            silent = None if ref is None else now - ref
        return rule.holds(obs.value, obs.rate_per_s, silent)

    async def _create(self, conn: asyncpg.Connection, rule: Rule, keys: list[tuple[str, str]], now: float
                      ) -> dict[tuple[str, str], Any]:
        """Insert instance rows in state ok; rows another evaluator inserted first are read back instead.
        Keys are sorted so two evaluators insert in the same order and cannot deadlock on each other."""
        keys = sorted(keys)
        devices, paths = [k[0] for k in keys], [k[1] for k in keys]
        rows = await conn.fetch(
            f"""INSERT INTO alert_instances (rule_id, device, path, state, since, created_at)
                SELECT $1, d, p, 'ok', $4, $4 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(d, p, n)
                ORDER BY n
                ON CONFLICT (rule_id, device, path) DO NOTHING RETURNING {_INSTANCE_COLS}""",
            rule.id, devices, paths, _dt(now),
        )
        out = {(r["device"], r["path"]): r for r in rows}
        if len(out) < len(keys):
            rows = await conn.fetch(
                f"""SELECT {_INSTANCE_COLS} FROM alert_instances i JOIN unnest($2::text[], $3::text[]) AS k(d, p)
                    ON i.device = k.d AND i.path = k.p WHERE i.rule_id = $1""", rule.id, devices, paths)
            out.update({(r["device"], r["path"]): r for r in rows if (r["device"], r["path"]) not in out})
        return out

    def _plan(self, rule: Rule, inst: Any, target: State, value: float | None, now: float) -> _Plan:
        new_episode = target in ("pending", "firing") and inst["state"] in ("ok", "resolved")
        notify, detail = False, ""
        if target == "firing":
            last = _ts(inst["notified_at"])
            notify = last is None or now - last >= rule.cooldown_s
            detail = "" if notify else "notification suppressed by cooldown"
        elif target == "resolved":
            notify = inst["notified"]
        return _Plan(inst["id"], inst["version"], inst["state"], target, value, notify and bool(rule.channels),
                     new_episode, detail, inst["device"], inst["path"],
                     value if value is not None else inst["value"])

    async def _apply(self, conn: asyncpg.Connection, rule: Rule, plans: list[_Plan], now: float) -> tuple[int, int]:
        """Make the planned transitions that nobody made first, in one transaction: conditional UPDATE
        (rows locked in id order, rows another evaluator holds skipped), history, outbox."""
        at = _dt(now)
        cols = list(zip(*[(p.id, p.version, p.target, p.value, p.notify, p.new_episode) for p in plans]))
        async with conn.transaction():
            won = await conn.fetch(
                """WITH plan AS (
                       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::float8[], $5::bool[],
                                            $6::bool[]) AS p(id, version, target, value, notify, new_episode)),
                   locked AS (
                       SELECT i.id FROM alert_instances i JOIN plan p ON p.id = i.id AND p.version = i.version
                       ORDER BY i.id FOR UPDATE OF i SKIP LOCKED)
                   UPDATE alert_instances i SET
                       state = p.target, since = $7, value = COALESCE(p.value, i.value), version = i.version + 1,
                       fired_at = CASE WHEN p.target = 'firing' THEN $7 ELSE i.fired_at END,
                       resolved_at = CASE WHEN p.target = 'resolved' THEN $7 ELSE i.resolved_at END,
                       notified = CASE WHEN p.target = 'firing' THEN p.notify WHEN p.new_episode THEN false
                                       ELSE i.notified END,
                       notified_at = CASE WHEN p.target = 'firing' AND p.notify THEN $7 ELSE i.notified_at END,
                       acknowledged = i.acknowledged AND NOT p.new_episode,
                       acked_by = CASE WHEN p.new_episode THEN NULL ELSE i.acked_by END,
                       acked_at = CASE WHEN p.new_episode THEN NULL ELSE i.acked_at END
                   FROM plan p
                   WHERE i.id = p.id AND i.version = p.version AND i.id IN (SELECT id FROM locked)
                   RETURNING i.id""",
                *cols, at,
            )
            winners = {r["id"] for r in won}
            done = [p for p in plans if p.id in winners]
            if not done:
                return 0, 0
            hist = await conn.fetch(
                """INSERT INTO alert_history (instance_id, instance_version, rule_id, rule_name, device, path,
                                              severity, from_state, to_state, value, at, detail)
                   SELECT i, v, $7, $8, d, p, $9, f, t, val, $10, det
                   FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                               $11::float8[], $12::text[]) AS h(i, v, d, p, f, t, val, det)
                   RETURNING id, instance_id""",
                [p.id for p in done], [p.version for p in done], [p.device for p in done], [p.path for p in done],
                [p.from_state for p in done], [p.target for p in done], rule.id, rule.name, rule.severity, at,
                [p.value for p in done], [p.detail for p in done],
            )
            history_ids = {r["instance_id"]: r["id"] for r in hist}
            out = []
            for p in done:
                if not p.notify:
                    continue
                payload = json.dumps({
                    "alert_id": p.id, "history_id": history_ids[p.id], "rule": rule.name, "severity": rule.severity,
                    "state": p.target, "device": p.device, "path": p.path, "value": p.shown_value,
                    "condition": rule.describe(), "at": at.isoformat(),
                })
                out += [(history_ids[p.id], ch, p.target, payload) for ch in rule.channels]
            if out:
                await conn.execute(
                    """INSERT INTO alert_outbox (history_id, channel, kind, payload)
                       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[])""",
                    *[list(c) for c in zip(*out)],
                )
        for p in done[:20]:
            log.info("alert %s %s → %s on %s %s", rule.name, p.from_state, p.target, p.device, p.path)
        if len(done) > 20:
            log.info("alert %s: %d more transitions", rule.name, len(done) - 20)
        return len(done), len(out)
