"""SQL for ``/api/query``: bucketed avg/min/max/last and counter rates, in both dialects.

Every statement takes the same parameters: $1 series id, $2 start, $3 end, $4 step in seconds.
``plain`` buckets with ``date_bin``, ``timescale`` with ``time_bucket``. avg/min/max/last read the
coarsest aggregate whose bucket divides the step (1 h, then 1 m; TimescaleDB continuous aggregates or the
plain backend's rollup tables), raw points otherwise and for the partial buckets at either end, so that
the answer covers exactly ``[start, end)`` like the raw path.

Rate (always from raw points): per-second increase of a counter within each bucket. Between consecutive samples the increase is
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


ORIGIN = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


def bucket_expr(dialect: str, col: str, width: str = STEP) -> str:
    if dialect == "timescale":
        return f"time_bucket({width}, {col})"
    return f"date_bin({width}, {col}, {ORIGIN})"


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
# Which functions each source answers exactly (docs/STORAGE.md, "Which answers are exact where"):
# avg (sum / n), min, max and last re-aggregate exactly from 1 m / 1 h buckets; rate needs every pair of
# consecutive samples (a counter reset inside a bucket is invisible in its first/last values), so it
# always reads raw points.
EXACT_ON_AGGREGATES = ("avg", "min", "max", "last")


def aggregate_for(step_s: float, fn: str = "avg") -> tuple[str, int] | None:
    """The coarsest aggregate whose bucket width divides the step, if any and if ``fn`` is exact on it."""
    if fn not in EXACT_ON_AGGREGATES:
        return None
    for view, width in AGGREGATES:
        if step_s >= width and float(step_s) % width == 0:
            return view, width
    return None


def aggregate_plan(*, view: str, width: int, fn: str, dialect: str, watermark: str | None = None) -> QueryPlan:
    """Buckets over ``[start, end)`` exactly as the raw path computes them: whole aggregate buckets from
    ``a`` (start rounded up to the aggregate width) to ``b`` (end rounded down), raw points for the partial
    head ``[start, a)`` and tail ``[b, end)``. Each raw point enters as a one-sample bucket (sum = min =
    max = last = value, n = 1), so the output buckets combine both without double counting. ``watermark``
    (plain backend: how far the rollup tables are filled) moves ``b`` down to it; later points are raw."""
    w = f"INTERVAL '{width} seconds'"
    fl = bucket_expr(dialect, "$2", w)
    a = f"(CASE WHEN {fl} = $2 THEN $2 ELSE {fl} + {w} END)"
    b = bucket_expr(dialect, "$3", w)
    if watermark is not None:
        b = f"least({b}, {watermark})"
    last = "last(last, time)" if dialect == "timescale" else "(array_agg(last ORDER BY time DESC))[1]"
    expr = {"avg": "sum(sum) / sum(n)", "min": "min(min)", "max": "max(max)", "last": last}[fn]
    raw = "SELECT time, value AS sum, 1::bigint AS n, value AS min, value AS max, value AS last FROM points WHERE series_id = $1"
    sql = f"""
WITH parts AS (
  SELECT bucket AS time, sum, n, min, max, last FROM {view}
  WHERE series_id = $1 AND bucket >= {a} AND bucket < {b}
  UNION ALL {raw} AND time >= $2 AND time < least({a}, $3)
  UNION ALL {raw} AND time >= greatest({a}, {b}) AND time < $3
)
SELECT {bucket_expr(dialect, "time")} AS t, {expr} AS v FROM parts GROUP BY 1 ORDER BY 1"""
    return QueryPlan(view, sql)


def timescale_plan(*, kind: str, fn: str, step_s: float) -> QueryPlan:
    agg = aggregate_for(step_s, fn) if kind == "num" else None
    if agg is None:
        return RawSQL.plan(kind=kind, fn=fn, step_s=step_s, dialect="timescale")
    view, width = agg
    return aggregate_plan(view=view, width=width, fn=fn, dialect="timescale")
