"""What the database holds and how its upkeep is doing, for ``swtel db status``, ``/api/health`` and
``/metrics``: schema version, backend, chunks or partitions, compression ratio, aggregate watermarks and
job health. Read-only, on one connection, for both backends.

Job health comes from each job's latest runs, not from its lifetime totals: a job is *failing* while its
latest run failed (``consecutive_failures > 0``) and healthy again after one success. TimescaleDB keeps
these figures itself (``_timescaledb_internal.bgw_job_stat``, ``timescaledb_information.job_errors``);
on plain PostgreSQL the job is the elected hub's maintenance round, which records its own runs in
``swtel_meta`` (:func:`record_maintenance`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import asyncpg

from .schema import PLAIN, TIMESCALE, TIMESCALE_JOBS

MAINT_KEY = "maintenance"  # swtel_meta key of the plain backend's maintenance record
PLAIN_JOB = "swtel maintenance (partitions, retention, rollups)"


def _iso(t: datetime | None) -> str | None:
    if t is None or t.year < 1971 or t.year > 9000:  # "never" and the extension's infinities
        return None
    return t.astimezone(timezone.utc).isoformat()


async def timescale_jobs(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await conn.fetch(TIMESCALE_JOBS)
    out = []
    for r in rows:
        failing = r["consecutive_failures"] > 0
        out.append({
            "job_id": r["job_id"], "name": r["name"], "proc": r["proc_name"], "target": r["target"],
            "last_run_status": r["last_run_status"], "last_run_started_at": _iso(r["last_run_started_at"]),
            "last_success_at": _iso(r["last_successful_finish"]), "next_start": _iso(r["next_start"]),
            "total_runs": r["total_runs"], "total_failures": r["total_failures"],
            "consecutive_failures": r["consecutive_failures"],
            "last_error": r["last_error"] if failing else None,
        })
    return out


async def plain_jobs(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    raw = await conn.fetchval("SELECT value FROM swtel_meta WHERE key = $1", MAINT_KEY)
    rec = json.loads(raw) if raw else {}
    return [{
        "job_id": None, "name": PLAIN_JOB, "proc": "maintain", "target": "points, states, points_1m, points_1h",
        "last_run_status": rec.get("last_run_status"), "last_run_started_at": rec.get("last_run_started_at"),
        "last_success_at": rec.get("last_success_at"), "next_start": rec.get("next_start"),
        "total_runs": rec.get("total_runs", 0), "total_failures": rec.get("total_failures", 0),
        "consecutive_failures": rec.get("consecutive_failures", 0), "last_error": rec.get("last_error"),
    }]


async def record_maintenance(conn: asyncpg.Connection, started: datetime, error: str | None,
                             every_s: float | None) -> None:
    """Plain backend: add one maintenance run to its record (the same fields TimescaleDB keeps per job)."""
    raw = await conn.fetchval("SELECT value FROM swtel_meta WHERE key = $1", MAINT_KEY)
    rec = json.loads(raw) if raw else {}
    now = datetime.now(timezone.utc)
    rec["total_runs"] = rec.get("total_runs", 0) + 1
    rec["last_run_started_at"] = _iso(started)
    if error is None:
        rec.update(last_run_status="Success", consecutive_failures=0, last_error=None, last_success_at=_iso(now))
    else:
        rec.update(last_run_status="Failed", last_error=error,
                   consecutive_failures=rec.get("consecutive_failures", 0) + 1,
                   total_failures=rec.get("total_failures", 0) + 1)
    rec["next_start"] = _iso(datetime.fromtimestamp(now.timestamp() + every_s, timezone.utc)) if every_s else None
    await conn.execute(
        "INSERT INTO swtel_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        MAINT_KEY, json.dumps(rec))


def failing(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs whose latest run failed: name, consecutive failures, last error, next start."""
    return [{k: j[k] for k in ("job_id", "name", "target", "consecutive_failures", "last_error", "next_start",
                               "last_success_at")}
            for j in jobs if j["consecutive_failures"] > 0]


async def _timescale_storage(conn: asyncpg.Connection) -> dict[str, Any]:
    chunks = {t: {"total": 0, "compressed": 0} for t in ("points", "states")}
    chunks |= {r["t"]: {"total": r["total"], "compressed": r["compressed"]} for r in await conn.fetch(
        "SELECT hypertable_name AS t, count(*) AS total, count(*) FILTER (WHERE is_compressed) AS compressed "
        "FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() GROUP BY 1 ORDER BY 1")}
    compression: dict[str, Any] = {}
    for rel in ("points", "states", "points_1m", "points_1h"):
        target = rel
        if rel.startswith("points_"):  # an aggregate's figures are those of its materialization hypertable
            target = await conn.fetchval(
                "SELECT format('%I.%I', h.schema_name, h.table_name) FROM _timescaledb_catalog.continuous_agg c "
                "JOIN _timescaledb_catalog.hypertable h ON h.id = c.mat_hypertable_id WHERE c.user_view_name = $1", rel)
        row = await conn.fetchrow(
            "SELECT sum(before_compression_total_bytes) AS b, sum(after_compression_total_bytes) AS a "
            "FROM hypertable_compression_stats($1::regclass)", target)
        before, after = (row["b"], row["a"]) if row else (None, None)
        compression[rel] = {"before_bytes": before, "after_bytes": after,
                            "ratio": round(float(before) / float(after), 2) if before and after else None}
    # the watermark of an aggregate never refreshed is the smallest time value (no datetime can hold it)
    watermarks = {r["v"]: _iso(r["wm"]) for r in await conn.fetch(
        "SELECT v, CASE WHEN w > 0 THEN _timescaledb_functions.to_timestamp(w) END AS wm FROM ("
        "  SELECT user_view_name AS v, _timescaledb_functions.cagg_watermark(mat_hypertable_id) AS w"
        "  FROM _timescaledb_catalog.continuous_agg) c ORDER BY 1")}
    return {"chunks": chunks, "compression": compression, "aggregates": watermarks}


async def _plain_storage(conn: asyncpg.Connection) -> dict[str, Any]:
    from .plain import TABLES, rollup_watermarks

    chunks = {t: {"total": 0, "compressed": 0} for t in TABLES}
    chunks |= {r["t"]: {"total": r["n"], "compressed": 0} for r in await conn.fetch(
        "SELECT p.relname AS t, count(*) AS n FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = ANY($1::text[]) GROUP BY 1 ORDER BY 1", list(TABLES))}
    return {"chunks": chunks, "compression": {}, "aggregates": await rollup_watermarks(conn)}


async def db_status(conn: asyncpg.Connection) -> dict[str, Any]:
    """Everything ``swtel db status`` shows; the database must be migrated (checked by the caller)."""
    backend = await conn.fetchval("SELECT value FROM swtel_meta WHERE key = 'backend'")
    version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
    out: dict[str, Any] = {"backend": backend, "schema_version": version}
    if backend == TIMESCALE:
        out["timescaledb_version"] = await conn.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        out.update(await _timescale_storage(conn))
        out["jobs"] = await timescale_jobs(conn)
    else:
        assert backend == PLAIN, backend
        out.update(await _plain_storage(conn))
        out["jobs"] = await plain_jobs(conn)
    out["server_version"] = await conn.fetchval("SHOW server_version")
    return out
