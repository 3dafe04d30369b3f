"""TimescaleDB: hypertables, compression, retention and continuous aggregates are the extension's jobs;
the hub routes queries to aggregates and reports each job's health from its latest runs (never assumes
jobs succeed: on PostgreSQL 15.20 every run is known to end in an error, docs/STORAGE.md)."""

from __future__ import annotations

from typing import Any

from .base import Storage
from .query import QueryPlan, timescale_plan
from .schema import TIMESCALE
from .status import timescale_jobs


class TimescaleStorage(Storage):
    backend = TIMESCALE

    def plan(self, *, kind: str, fn: str, step_s: float, many: bool = False) -> QueryPlan:
        return timescale_plan(kind=kind, fn=fn, step_s=step_s, many=many)

    async def jobs(self) -> list[dict[str, Any]]:
        return await timescale_jobs(self.pool)
