"""SQL for ``/api/query``: bucketed avg/min/max/last and counter rates, in both dialects.

Every statement takes the same parameters: $1 series id, $2 start, $3 end, $4 step in seconds.
``plain`` buckets with ``date_bin`` over raw points; ``timescale`` uses ``time_bucket`` and reads the
coarsest continuous aggregate whose bucket divides the step (1 h, then 1 m), raw points otherwise.

Rate: per-second increase of a counter within each bucket. Between consecutive samples the increase is
``v - prev``; a decrease is a reset (the increase is ``v``: the counter restarted from zero) unless the
counter was about to wrap: its distance to 2^32 (or 2^64) was smaller than its previous increase, in
which case the increase is ``v + 2^W - prev``. A reset therefore never shows as a negative or huge value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FNS = ("avg", "max", "min", "last", "rate")
STEP = "make_interval(secs => $4)"

# A counter's increase since its previous sample (p1; p2 the one before), reset- and wrap-aware. Shared by
# the one-series query below and the dashboards' many-series query (hub/api/panel.py).
RATE_DELTA = """
         CASE WHEN p1 IS NULL THEN NULL
              WHEN value >= p1 THEN value - p1
              WHEN p2 IS NOT NULL AND p2 <= p1
                   AND (CASE WHEN p1 < 4294967296 THEN 4294967296::float8 ELSE 18446744073709551616::float8 END) - p1 <= p1 - p2
                THEN value + (CASE WHEN p1 < 4294967296 THEN 4294967296::float8 ELSE 18446744073709551616::float8 END) - p1
              ELSE value END"""

_RATE = """
WITH s AS ({source}),
d AS (SELECT time, value, lag(value) OVER w AS p1, lag(value, 2) OVER w AS p2 FROM s WINDOW w AS (ORDER BY time)),
inc AS (
  SELECT time,""" + RATE_DELTA.replace("{", "{{").replace("}", "}}") + """ AS delta
  FROM d)
SELECT {bucket} AS t, sum(delta) / $4 AS v FROM inc
WHERE time >= $2 AND delta IS NOT NULL GROUP BY 1 ORDER BY 1
"""

_RAW_SOURCE = "SELECT time, value FROM points WHERE series_id = $1 AND time >= $2 - {step} AND time < $3"


def bucket_expr(dialect: str, col: str) -> str:
    if dialect == "timescale":
        return f"time_bucket({STEP}, {col})"
    return f"date_bin({STEP}, {col}, TIMESTAMPTZ '1970-01-01 00:00:00+00')"


_TYPES = {"1": "integer", "2": "timestamptz", "3": "timestamptz", "4": "float8"}


@dataclass(frozen=True)
class QueryPlan:
    source: str  # which relation serves the query: points, states, points_1m, points_1h
    sql: str

    def __post_init__(self) -> None:  # give every parameter its type: `$2 - interval` is ambiguous otherwise
        object.__setattr__(self, "sql", re.sub(r"\$([1-4])\b", lambda m: f"${m.group(1)}::{_TYPES[m.group(1)]}", self.sql))


class RawSQL:
    @staticmethod
    def plan(*, kind: str, fn: str, step_s: float, dialect: str) -> QueryPlan:
        if kind == "str":  # state series: only the last value per bucket makes sense (checked by the API)
            last = "last(value, time)" if dialect == "timescale" else "(array_agg(value ORDER BY time DESC))[1]"
            b = bucket_expr(dialect, "time")
            return QueryPlan("states", f"SELECT {b} AS t, {last} AS v FROM states "
                                       f"WHERE series_id = $1 AND time >= $2 AND time < $3 GROUP BY 1 ORDER BY 1")
        b = bucket_expr(dialect, "time")
        if fn == "rate":
            return QueryPlan("points", _RATE.format(source=_RAW_SOURCE.format(step=STEP), bucket=b))
        if fn == "last":
            agg = "last(value, time)" if dialect == "timescale" else "(array_agg(value ORDER BY time DESC))[1]"
        else:
            agg = f"{fn}(value)"
        return QueryPlan("points", f"SELECT {b} AS t, {agg} AS v FROM points "
                                   f"WHERE series_id = $1 AND time >= $2 AND time < $3 GROUP BY 1 ORDER BY 1")


AGGREGATES = (("points_1h", 3600), ("points_1m", 60))


def aggregate_for(step_s: float) -> tuple[str, int] | None:
    """The coarsest continuous aggregate whose bucket width divides the step, if any."""
    for view, width in AGGREGATES:
        if step_s >= width and float(step_s) % width == 0:
            return view, width
    return None


def timescale_plan(*, kind: str, fn: str, step_s: float) -> QueryPlan:
    agg = aggregate_for(step_s) if kind == "num" else None
    if agg is None:
        return RawSQL.plan(kind=kind, fn=fn, step_s=step_s, dialect="timescale")
    view, width = agg
    b = bucket_expr("timescale", "bucket")
    if fn == "rate":
        # each aggregate bucket becomes two samples (its first and last value), then the same rate rule
        source = (
            f"SELECT bucket AS time, first AS value FROM {view} WHERE series_id = $1 AND bucket >= $2 - {STEP} AND bucket < $3 "
            f"UNION ALL SELECT bucket + INTERVAL '{width} seconds' - INTERVAL '1 microsecond', last FROM {view} "
            f"WHERE series_id = $1 AND bucket >= $2 - {STEP} AND bucket < $3"
        )
        return QueryPlan(view, _RATE.format(source=source, bucket=bucket_expr("timescale", "time")))
    expr = {"avg": "sum(sum) / sum(n)", "min": "min(min)", "max": "max(max)", "last": "last(last, bucket)"}[fn]
    return QueryPlan(view, f"SELECT {b} AS t, {expr} AS v FROM {view} "
                           f"WHERE series_id = $1 AND bucket >= $2 AND bucket < $3 GROUP BY 1 ORDER BY 1")
