"""The storage interface both backends share: series dictionary, exactly-once batch writes, events,
config backups and queries. Backends differ only in partition/retention upkeep and in SQL dialect
(``date_bin`` vs ``time_bucket``, raw points vs continuous aggregates); see ``plain.py`` and ``timescale.py``.

Exactly-once (docs/ARCHITECTURE.md, "Exactly-once ingest"): a batch's Nats-Msg-Id (device, token, seq)
is inserted into ``ingest_marks`` in the same transaction as its rows. A redelivered batch finds its
mark and is skipped; a batch whose transaction did not commit has no mark and is written again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from swtel.shared import wire
from swtel.shared.settings import Settings

from .copybin import HEADER, PG_EPOCH_US, POINT_PACK, TRAILER, point_run
from .paths import split_keys
from .query import QueryPlan, RawSQL

log = logging.getLogger("swtel.hub.storage")
DAY_US = 86_400_000_000
MAINT_LOCK = 0x5377_7465_6C02
_STATE_HEAD = struct.Struct(">hiqiii").pack

SERIES_SQL = """
WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[])
               AS t(device, name, path, keys, kind)),
ins AS (INSERT INTO series (device, name, path, keys, kind)
        SELECT device, name, path, keys, kind FROM input ORDER BY device, name
        ON CONFLICT (device, name) DO NOTHING RETURNING id, device, name, kind)
SELECT id, device, name, kind FROM ins
UNION ALL
SELECT s.id, s.device, s.name, s.kind FROM series s JOIN input i ON s.device = i.device AND s.name = i.name
"""

SERIES_KNOWN_SQL = """
SELECT s.id, s.device, s.name FROM series s
JOIN unnest($1::text[], $2::text[]) AS i(device, name) ON s.device = i.device AND s.name = i.name
"""


MARKS_SQL = """
INSERT INTO ingest_marks (device, token, seq, stream_seq)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS t(device, token, seq, stream_seq)
ORDER BY device, token, seq
ON CONFLICT DO NOTHING RETURNING device, token, seq
"""


@dataclass
class Item:
    """One decoded telemetry message on its way to the database."""

    batch: wire.TelemetryBatch
    stream_seq: int
    cutoff_ns: int | None = None  # samples stamped at or after this: past the holder's tenure (hub/fencing.py)


@dataclass
class WriteResult:
    points: int = 0
    states: int = 0
    batches: int = 0
    duplicates: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # sample-level drops by reason

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass
class _Rows:
    points: list[bytes] = field(default_factory=list)  # binary COPY rows, one or many per item
    states: list[bytes] = field(default_factory=list)
    n_points: int = 0
    n_states: int = 0


def _trim_runs(times: list[int], runs: list[int], n: int) -> tuple[list[int], list[int]]:
    """The runs of the first ``n`` values."""
    t_out: list[int] = []
    r_out: list[int] = []
    for t, r in zip(times, runs):
        if n <= 0:
            break
        t_out.append(t)
        r_out.append(min(r, n))
        n -= r
    return t_out, r_out


def _kind(v: object) -> str:
    return "str" if isinstance(v, str) else "num"


class Storage:
    """One object per hub process; safe for concurrent use by several ingest workers."""

    backend = "?"

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self._series: dict[str, dict[str, int]] = {}  # device -> name -> id
        self._refused: dict[str, set[str]] = {}  # device -> names refused by ingest_max_series_per_device

    # ---- series dictionary -----------------------------------------------------------------------

    async def resolve(self, items: list[Item]) -> None:
        """Make sure every (device, path) in ``items`` has a series id in the cache."""
        missing: dict[tuple[str, str], str] = {}
        for it in items:
            known = self._series.get(it.batch.device)
            refused = self._refused.get(it.batch.device, ())
            n = self.settings.ingest_max_samples
            for path, value in zip(it.batch.paths[:n], it.batch.values[:n]):
                if (known is None or path not in known) and value is not None and path not in refused:
                    missing.setdefault((it.batch.device, path), _kind(value))
        if missing:  # known to the database (another hub, an earlier run): a plain SELECT, no insert attempt
            devs, names = zip(*missing)
            for r in await self.pool.fetch(SERIES_KNOWN_SQL, list(devs), list(names)):
                self._series.setdefault(r["device"], {})[r["name"]] = r["id"]
                missing.pop((r["device"], r["name"]), None)
        if missing:
            self._limit_series(missing, await self._series_counts({d for d, _ in missing}))
        for _ in range(3):  # a concurrent hub may insert the same names between our INSERT and SELECT
            if not missing:
                return
            devices, names, paths, keys, kinds = [], [], [], [], []
            for (dev, name), kind in missing.items():
                path, k = split_keys(name)
                devices.append(dev), names.append(name), paths.append(path), keys.append(json.dumps(k))
                kinds.append(kind)
            rows = await self.pool.fetch(SERIES_SQL, devices, names, paths, keys, kinds)
            for r in rows:
                self._series.setdefault(r["device"], {})[r["name"]] = r["id"]
                missing.pop((r["device"], r["name"]), None)
        if missing:
            raise RuntimeError(f"could not resolve {len(missing)} series ids")

    async def _series_counts(self, devices: set[str]) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT device, count(*) AS n FROM series WHERE device = ANY($1::text[]) GROUP BY device", list(devices))
        return {r["device"]: r["n"] for r in rows}

    def _limit_series(self, missing: dict[tuple[str, str], str], counts: dict[str, int]) -> None:
        """New series past ``ingest_max_series_per_device`` are refused (their samples are dropped and counted
        as ``series_limit`` by ``_rows``); series the device already has keep flowing. Several hubs may each
        let a few through at once: the limit is a guard against a runaway device, not an exact quota."""
        cap = self.settings.ingest_max_series_per_device
        room = {d: cap - n for d, n in counts.items()}
        for dev, name in sorted(missing):
            if room.get(dev, cap) > 0:
                room[dev] = room.get(dev, cap) - 1
            else:
                self._refused.setdefault(dev, set()).add(name)
                del missing[(dev, name)]

    # ---- telemetry -------------------------------------------------------------------------------

    def _window_us(self) -> tuple[int, int]:
        now_us = time.time_ns() // 1000 - PG_EPOCH_US
        return now_us - self.settings.retention_days * DAY_US, now_us + self.settings.partitions_ahead_days * DAY_US

    def _rows(self, it: Item, lo: int, hi: int, res: WriteResult, days: set[int]) -> _Rows:
        """Binary COPY rows of one :func:`~swtel.shared.wire.columnar` batch. The hot path, per run of values
        sharing a timestamp: one range check, and when the run is all numbers of known series, its rows built
        by C loops (:func:`~.copybin.point_run`; the series ids are looked up by a C loop over the paths;
        a string, a null or an unknown series makes that fail, and only then is the run built with a
        check per sample, :meth:`_rows_slow`)."""
        out = _Rows()
        b = it.batch
        paths, values, times, runs = b.paths, b.values, b.times, b.runs
        max_n = self.settings.ingest_max_samples
        if len(values) > max_n:
            res.drop("batch_limit", len(values) - max_n)
            paths, values = paths[:max_n], values[:max_n]
            times, runs = _trim_runs(times, runs, max_n)
        ids = self._series.get(b.device, {})
        sids = list(map(ids.get, paths))  # (a C loop)
        window_hi = hi
        if it.cutoff_ns is not None:  # past the holder's tenure (hub/fencing.py): counted as after_tenure
            hi = min(hi, it.cutoff_ns // 1000 - PG_EPOCH_US)
        i = 0
        for ts, n in zip(times, runs):
            j = i + n
            t = ts // 1000 - PG_EPOCH_US
            if t < lo or t >= hi:
                res.drop("after_tenure" if hi <= t < window_hi else "out_of_range", n)
            else:
                days.add(t // DAY_US)
                try:
                    out.points.append(point_run(t, sids[i:j], values[i:j]))
                    out.n_points += n
                except (TypeError, OverflowError):  # a string or null value, a series not (yet) known: sample by sample
                    self._rows_slow(b.device, t, paths[i:j], sids[i:j], values[i:j], res, out)
            i = j
        return out

    def _rows_slow(self, device: str, t: int, paths: list[str], sids: list[int | None], values: list[wire.Value],
                   res: WriteResult, out: _Rows) -> None:
        refused = self._refused.get(device, ())
        max_str = self.settings.ingest_max_string_bytes
        for path, sid, v in zip(paths, sids, values):
            if sid is None:
                if path in refused:
                    res.drop("series_limit")
                    continue
                if v is not None:
                    raise KeyError(path)  # resolved once for the whole fetch, then built again
            tv = type(v)
            if tv is int or tv is float:
                try:
                    out.points.append(POINT_PACK(3, 8, t, 4, sid, 8, v))
                    out.n_points += 1
                except OverflowError:
                    res.drop("bad_value")
            elif tv is str:
                data = v.replace("\x00", "").encode()  # type: ignore[union-attr]  # text cannot hold NUL
                if len(data) > max_str:
                    res.drop("string_too_long")
                    continue
                out.states.append(_STATE_HEAD(3, 8, t, 4, sid, len(data)) + data)
                out.n_states += 1
            elif tv is bool:
                out.points.append(POINT_PACK(3, 8, t, 4, sid, 8, 1.0 if v else 0.0))
                out.n_points += 1
            else:
                res.drop("null_value")

    async def _all_rows(self, items: list[Item], lo: int, hi: int, res: WriteResult, days: set[int]) -> list[_Rows]:
        """Rows of every item; a batch with a path not in the cache is built again after one lookup round
        trip for all such batches (cheaper than checking every sample against the cache first)."""
        rows: list[_Rows | None] = []
        retry: list[int] = []
        for i, it in enumerate(items):
            attempt = WriteResult()
            try:
                rows.append(self._rows(it, lo, hi, attempt, days))
            except KeyError:
                rows.append(None)
                retry.append(i)
                continue
            for reason, n in attempt.dropped.items():
                res.drop(reason, n)
        if retry:
            await self.resolve([items[i] for i in retry])
            for i in retry:
                rows[i] = self._rows(items[i], lo, hi, res, days)
        return rows  # type: ignore[return-value]

    async def prepare_days(self, days: set[int]) -> None:
        """Backend hook: make sure partitions exist for these days (µs-since-2000 day numbers)."""

    async def write_telemetry(self, items: list[Item]) -> WriteResult:
        """Store ``items`` exactly once, in one transaction. Raises on database errors (nothing committed)."""
        res = WriteResult()
        lo, hi = self._window_us()
        days: set[int] = set()
        seen: set[tuple[str, int, int]] = set()
        unique: list[Item] = []
        for it in items:
            wire.columnar(it.batch)  # done at decode already (hub/ingest.py); a no-op then
            key = (it.batch.device, it.batch.token, it.batch.seq)
            if key in seen:
                res.duplicates += 1
                continue
            seen.add(key)
            unique.append(it)
        rows = await self._all_rows(unique, lo, hi, res, days)
        await self.prepare_days(days)
        async with self.pool.acquire() as conn, conn.transaction():
            # fencing is decided before (hub/fencing.py): every item here is a genuine holder's batch
            current: list[tuple[Item, _Rows]] = list(zip(unique, rows))
            fresh: set[tuple[str, int, int]] = set()
            if current:
                marks = await conn.fetch(
                    MARKS_SQL,
                    [it.batch.device for it, _ in current],
                    [it.batch.token for it, _ in current],
                    [it.batch.seq for it, _ in current],
                    [it.stream_seq for it, _ in current],
                )
                fresh = {(m["device"], m["token"], m["seq"]) for m in marks}
            points: list[bytes] = []
            states: list[bytes] = []
            for it, r in current:
                if (it.batch.device, it.batch.token, it.batch.seq) in fresh:
                    points += r.points
                    states += r.states
                    res.points += r.n_points
                    res.states += r.n_states
                    res.batches += 1
                else:
                    res.duplicates += 1
            # (a memoryview: asyncpg would take bytes for a file name)
            if points:
                await conn.copy_to_table(
                    "points", source=memoryview(HEADER + b"".join(points) + TRAILER), columns=("time", "series_id", "value"),
                    format="binary",
                )
            if states:
                await conn.copy_to_table(
                    "states", source=memoryview(HEADER + b"".join(states) + TRAILER), columns=("time", "series_id", "value"),
                    format="binary",
                )
        return res

    # ---- events and config backups -----------------------------------------------------------------

    async def write_events(self, events: list[wire.Event], configs: list[wire.ConfigBackup]) -> int:
        """Idempotent: events are unique by (device, time, agent, kind), backups by (device, time); a backup
        is stored only when its content differs from the device's latest one."""
        stored = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for e in events:
                r = await conn.execute(
                    "INSERT INTO events (time, device, agent, kind, detail) VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT DO NOTHING",
                    _dt(e.ts), e.device, e.agent, e.kind, e.detail,
                )
                stored += r.endswith(" 1")
            for c in configs:
                digest = hashlib.sha256(c.text.encode()).hexdigest()
                r = await conn.execute(
                    "INSERT INTO config_backups (time, device, agent, token, format, content, sha256) "
                    "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS ("
                    "  SELECT 1 FROM (SELECT sha256 FROM config_backups WHERE device = $2 ORDER BY time DESC LIMIT 1) l"
                    "  WHERE l.sha256 = $7) ON CONFLICT DO NOTHING",
                    _dt(c.ts), c.device, c.agent, c.token, c.format, c.text, digest,
                )
                stored += r.endswith(" 1")
        return stored

    # ---- upkeep ------------------------------------------------------------------------------------

    async def maintain(self) -> dict[str, Any]:
        """Periodic upkeep, run by the hub elected for fleet work (hub/fleet.py); an advisory lock still lets
        one caller at a time do the work (an older hub during a rolling upgrade, an operator)."""
        async with self.pool.acquire() as conn:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINT_LOCK)
            if not got:
                return {"skipped": True}
            started = datetime.now(timezone.utc)
            try:
                out = await self._maintain(conn)
                # a message can be redelivered only while it is in the stream: keep marks that long
                keep = timedelta(seconds=self.settings.stream_max_age_s + self.settings.stream_duplicate_window_s)
                r = await conn.execute("DELETE FROM ingest_marks WHERE at < now() - $1::interval", keep)
                out["marks_pruned"] = int(r.split()[-1])
                r = await conn.execute("DELETE FROM dead_letters WHERE at < now() - make_interval(days => $1)",
                                       self.settings.dead_letter_days)
                out["dead_letters_pruned"] = int(r.split()[-1])
                # a tenure that ended before the oldest message the stream can still hold is never asked about again
                r = await conn.execute("DELETE FROM lease_tenures WHERE ended < now() - $1::interval", keep)
                out["tenures_pruned"] = int(r.split()[-1])
                r = await conn.execute(
                    "DELETE FROM events WHERE time < now() - make_interval(days => $1)", self.settings.retention_days
                )
                out["events_pruned"] = int(r.split()[-1])
                await self._record_run(conn, started, None)
                return out
            except (asyncpg.PostgresError, ValueError) as e:  # the database refused part of the work
                await self._record_run(conn, started, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                raise
            finally:
                if not conn.is_closed():
                    await conn.execute("SELECT pg_advisory_unlock($1)", MAINT_LOCK)

    async def _maintain(self, conn: asyncpg.Connection) -> dict[str, Any]:
        return {}

    async def _record_run(self, conn: asyncpg.Connection, started: datetime, error: str | None) -> None:
        """Backend hook: remember a maintenance run (the plain backend's job health)."""

    async def jobs(self) -> list[dict[str, Any]]:
        """Every background job with its latest runs (hub/storage/status.py)."""
        return []

    async def job_failures(self) -> list[dict[str, Any]]:
        """Jobs whose latest run failed, with name, consecutive failures, last error and next start; a job
        that succeeds again leaves this list. Unreadable job stats are one entry saying why."""
        from .status import failing

        try:
            return failing(await self.jobs())
        except asyncpg.PostgresError as e:
            return [{"job_id": None, "name": "job stats", "target": "", "consecutive_failures": 1,
                     "last_error": f"cannot read job stats: {str(e).splitlines()[0]}", "next_start": None,
                     "last_success_at": None}]

    async def sync_devices(self, rows: list[tuple[str, str, str, str, str, str | None, int | None]]) -> None:
        """Mirror the NATS inventory into ``devices`` (name, address, protocol, platform, tags, agent, token)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO devices (name, address, protocol, platform, tags, agent, token) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::bigint[]) "
                "ON CONFLICT (name) DO UPDATE SET address = EXCLUDED.address, protocol = EXCLUDED.protocol, "
                "platform = EXCLUDED.platform, tags = EXCLUDED.tags, agent = EXCLUDED.agent, token = EXCLUDED.token, "
                "updated_at = now()",
                *([list(col) for col in zip(*rows)] if rows else [[]] * 7),
            )
            removed = [r["name"] for r in await conn.fetch(
                "DELETE FROM devices WHERE NOT (name = ANY($1::text[])) RETURNING name", [r[0] for r in rows])]
            if removed:  # their status and facts go with them (a removed device is not "down" forever)
                await conn.execute("DELETE FROM device_status WHERE device = ANY($1::text[])", removed)
                await conn.execute("DELETE FROM device_facts WHERE device = ANY($1::text[])", removed)

    # ---- queries -----------------------------------------------------------------------------------

    async def list_series(self, device: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, device, name, path, keys, kind FROM series WHERE device = $1 ORDER BY name", device
        )
        return [{**dict(r), "keys": json.loads(r["keys"])} for r in rows]

    async def get_series(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        rows = await self.pool.fetch("SELECT id, device, name, kind FROM series WHERE id = ANY($1::int[])", ids)
        return {r["id"]: dict(r) for r in rows}

    def plan(self, *, kind: str, fn: str, step_s: float, many: bool = False) -> QueryPlan:
        """The source and SQL for one series (``many``: an array of series, rows keyed by series_id)."""
        return RawSQL.plan(kind=kind, fn=fn, step_s=step_s, dialect=self.backend, many=many)

    async def query(self, series_id: int, kind: str, start: datetime, end: datetime, step_s: float, fn: str
                    ) -> tuple[str, list[tuple[float, Any]]]:
        plan = self.plan(kind=kind, fn=fn, step_s=step_s)
        rows = await self.pool.fetch(plan.sql, series_id, start, end, step_s)
        return plan.source, [(r["t"].timestamp(), r["v"]) for r in rows]

    async def query_many(self, series_ids: list[int], start: datetime, end: datetime, step_s: float, fn: str
                         ) -> tuple[str, dict[int, list[tuple[float, Any]]]]:
        """Numeric series bucketed in one statement, from the same source ``query`` would choose."""
        plan = self.plan(kind="num", fn=fn, step_s=step_s, many=True)
        out: dict[int, list[tuple[float, Any]]] = {sid: [] for sid in series_ids}
        for r in await self.pool.fetch(plan.sql, series_ids, start, end, step_s):
            out[r["series_id"]].append((r["t"].timestamp(), r["v"]))
        return plan.source, out

    async def ping(self, timeout: float = 2.0) -> bool:
        try:
            async with self.pool.acquire(timeout=timeout) as conn:
                return await conn.fetchval("SELECT 1", timeout=timeout) == 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
