"""TimescaleDB: hypertables, compression, retention and continuous aggregates are the extension's jobs;
the hub only routes queries to aggregates and reports job failures (never assumes jobs succeed)."""

from __future__ import annotations

from typing import Any

import asyncpg

from .base import Storage
from .query import QueryPlan, timescale_plan
from .schema import TIMESCALE, TIMESCALE_JOB_STATS


class TimescaleStorage(Storage):
    backend = TIMESCALE

    def plan(self, *, kind: str, fn: str, step_s: float) -> QueryPlan:
        return timescale_plan(kind=kind, fn=fn, step_s=step_s)

    async def jobs(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(TIMESCALE_JOB_STATS)
        return [dict(r) for r in rows]

    async def job_failures(self) -> list[dict[str, Any]]:
        try:
            jobs = await self.jobs()
        except asyncpg.PostgresError as e:
            return [{"job_id": None, "error": f"cannot read job stats: {e}"}]
        return [
            {"job_id": j["job_id"], "proc_name": j["proc_name"], "hypertable": j["hypertable"],
             "last_run_status": j["last_run_status"], "total_failures": j["total_failures"]}
            for j in jobs if j["last_run_status"] == "Failed" or (j["total_failures"] or 0) > 0
        ]
