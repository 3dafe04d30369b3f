"""SQL for ``/api/query``: bucketed avg/min/max/last and counter rates, in both dialects.

Every statement takes the same parameters: $1 series id, $2 start, $3 end, $4 step in seconds.
``plain`` buckets with ``date_bin``, ``timescale`` with ``time_bucket``. avg/min/max/last read the
coarsest aggregate whose bucket divides the step (1 h, then 1 m; TimescaleDB continuous aggregates or the
plain backend's rollup tables), raw points otherwise and for the partial buckets at either end, so that
the answer covers exactly ``[start, end)`` like the raw path. Every function is exact on the aggregates,
rate included (from each bucket's counter summary, ``_aggregate_rate``).

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
# the queries below and the counter summaries of the aggregates (schema.py, migration 8).
def counter_delta(v: str, p1: str, p2: str) -> str:
    w = f"(CASE WHEN {p1} < 4294967296 THEN 4294967296::float8 ELSE 18446744073709551616::float8 END)"
    return (f"CASE WHEN {p1} IS NULL THEN NULL WHEN {v} >= {p1} THEN {v} - {p1} "
            f"WHEN {p2} IS NOT NULL AND {p2} <= {p1} AND {w} - {p1} <= {p1} - {p2} THEN {v} + {w} - {p1} "
            f"ELSE {v} END")


RATE_DELTA = " " + counter_delta("value", "p1", "p2")

# {source}: rows (key…, time, i, value, own) in time order by (time, i); the increase of a row is counted
# when ``own`` (its predecessors in the stream are its true ones); {extra}: more (key…, time, delta) rows
_RATE = """
WITH s AS ({source}),
d AS (SELECT {key}time, own, value, lag(value) OVER w AS p1, lag(value, 2) OVER w AS p2 FROM s
      WINDOW w AS ({part}ORDER BY time, i)),
inc AS (
  SELECT {key}time, CASE WHEN own THEN""" + RATE_DELTA.replace("{", "{{").replace("}", "}}") + """ END AS delta
  FROM d {extra})
SELECT {key}{bucket} AS t, sum(delta) / $4 AS v FROM inc
WHERE time >= $2 AND delta IS NOT NULL {group}
"""


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
    many: bool = False  # $1 is an array of series ids, and rows start with series_id (dashboards: hub/api/panel.py)

    def __post_init__(self) -> None:  # give every parameter its type: `$2 - interval` is ambiguous otherwise
        types = {**_TYPES, "1": "integer[]"} if self.many else _TYPES
        object.__setattr__(self, "sql", re.sub(r"\$([1-4])\b", lambda m: f"${m.group(1)}::{types[m.group(1)]}", self.sql))


@dataclass(frozen=True)
class _Sel:
    """One series ($1 an id) or many ($1 an array; every row keyed by series_id)."""

    many: bool

    @property
    def where(self) -> str:
        return "series_id = ANY($1)" if self.many else "series_id = $1"

    @property
    def key(self) -> str:  # leading output column
        return "series_id, " if self.many else ""

    @property
    def part(self) -> str:  # window partition
        return "PARTITION BY series_id " if self.many else ""

    @property
    def group(self) -> str:
        return "GROUP BY 1, 2 ORDER BY 1, 2" if self.many else "GROUP BY 1 ORDER BY 1"


class RawSQL:
    @staticmethod
    def plan(*, kind: str, fn: str, step_s: float, dialect: str, many: bool = False) -> QueryPlan:
        q = _Sel(many)
        b = bucket_expr(dialect, "time")
        if kind == "str":  # state series: only the last value per bucket makes sense (checked by the API)
            last = "last(value, time)" if dialect == "timescale" else "(array_agg(value ORDER BY time DESC))[1]"
            return QueryPlan("states", f"SELECT {q.key}{b} AS t, {last} AS v FROM states "
                                       f"WHERE {q.where} AND time >= $2 AND time < $3 {q.group}", many)
        if fn == "rate":
            return QueryPlan("points", _RATE.format(
                key=q.key, part=q.part, group=q.group, bucket=b, extra="",
                source=f"SELECT {q.key}time, 0 AS i, value, true AS own FROM points "
                       f"WHERE {q.where} AND time >= $2 - {STEP} AND time < $3"), many)
        if fn == "last":
            agg = "last(value, time)" if dialect == "timescale" else "(array_agg(value ORDER BY time DESC))[1]"
        else:
            agg = f"{fn}(value)"
        return QueryPlan("points", f"SELECT {q.key}{b} AS t, {agg} AS v FROM points "
                                   f"WHERE {q.where} AND time >= $2 AND time < $3 {q.group}", many)


AGGREGATES = (("points_1h", 3600), ("points_1m", 60))
# Which functions each source answers exactly (docs/STORAGE.md, "Which answers are exact where"): avg
# (sum / n), min, max and last re-aggregate exactly from 1 m / 1 h buckets, and so does rate, from each
# bucket's counter summary (hub/storage/schema.py, migration 8). Every function is exact on raw points.
EXACT_ON_AGGREGATES = ("avg", "min", "max", "last", "rate")


def aggregate_for(step_s: float, fn: str = "avg") -> tuple[str, int] | None:
    """The coarsest aggregate whose bucket width divides the step, if any and if ``fn`` is exact on it."""
    if fn not in EXACT_ON_AGGREGATES:
        return None
    for view, width in AGGREGATES:
        if step_s >= width and float(step_s) % width == 0:
            return view, width
    return None


def aggregate_plan(*, view: str, width: int, fn: str, dialect: str, watermark: str | None = None,
                   many: bool = False) -> QueryPlan:
    """Buckets over ``[start, end)`` exactly as the raw path computes them: whole aggregate buckets from
    ``a`` (start rounded up to the aggregate width) to ``b`` (end rounded down), raw points for the partial
    head ``[start, a)`` and tail ``[b, end)``. Each raw point enters as a one-sample bucket (sum = min =
    max = last = value, n = 1), so the output buckets combine both without double counting. ``watermark``
    (plain backend: how far the rollup tables are filled) moves ``b`` down to it; later points are raw."""
    q = _Sel(many)
    w = f"INTERVAL '{width} seconds'"
    fl = bucket_expr(dialect, "$2", w)
    a = f"(CASE WHEN {fl} = $2 THEN $2 ELSE {fl} + {w} END)"
    b = bucket_expr(dialect, "$3", w)
    if watermark is not None:
        b = f"least({b}, {watermark})"
    if fn == "rate":
        return QueryPlan(view, _aggregate_rate(q, view, dialect, a, b, w), many)
    last = "last(last, time)" if dialect == "timescale" else "(array_agg(last ORDER BY time DESC))[1]"
    expr = {"avg": "sum(sum) / sum(n)", "min": "min(min)", "max": "max(max)", "last": last}[fn]
    raw = (f"SELECT {q.key}time, value AS sum, 1::bigint AS n, value AS min, value AS max, value AS last "
           f"FROM points WHERE {q.where}")
    sql = f"""
WITH parts AS (
  SELECT {q.key}bucket AS time, sum, n, min, max, last FROM {view}
  WHERE {q.where} AND bucket >= {a} AND bucket < {b}
  UNION ALL {raw} AND time >= $2 AND time < least({a}, $3)
  UNION ALL {raw} AND time >= greatest({a}, {b}) AND time < $3
)
SELECT {q.key}{bucket_expr(dialect, "time")} AS t, {expr} AS v FROM parts {q.group}"""
    return QueryPlan(view, sql, many)


def _aggregate_rate(q: _Sel, view: str, dialect: str, a: str, b: str, width: str) -> str:
    """Rate over whole aggregate buckets in [a, b) and raw points around them, equal to the raw rate.

    The raw path needs every pair of consecutive samples. An aggregate bucket stands in for its samples with
    its counter summary (schema.py, migration 8): its first two and last two values, in time order, join the
    raw points of the head and tail as a stream, so the increases of its samples 1 and 2 are computed from
    their true predecessors; the increases of its samples 3 … n are its ``inc``. Its last two values are the
    predecessors of the next bucket's first samples (the reset and wrap rule looks two samples back). The
    raw path's look-back (one step before start, for the first increase) is read the same way: whole
    buckets from the aggregate, so a range older than raw retention still gets its first increase. Buckets
    summarized before migration 8 (``inc`` NULL) are left out."""
    raw = f"SELECT {q.key}time, 0 AS i, value, true AS own FROM points WHERE {q.where}"
    lb_lo = f"({a} - {STEP})"  # whole buckets of the look-back [start - step, start): [lb_lo, lb_hi)
    lb_hi = f"greatest({lb_lo}, least({bucket_expr(dialect, '$2', width)}, {b}))"
    whole = f"{q.where} AND bucket >= {a} AND bucket < {b} AND inc IS NOT NULL"
    source = f"""{raw} AND time >= $2 - {STEP} AND time < {lb_lo}
  UNION ALL {raw} AND time >= {lb_hi} AND time < least({a}, $3)
  UNION ALL {raw} AND time >= greatest({a}, {b}) AND time < $3
  UNION ALL SELECT {q.key}bucket, v.i, v.value, v.i <= 2 FROM {view}
    CROSS JOIN LATERAL (VALUES (1, 1::bigint, first), (2, 2::bigint, second), (3, n - 1, last2), (4, n, last))
      AS v(slot, i, value)
    WHERE {q.where} AND inc IS NOT NULL
      AND (bucket >= {a} AND bucket < {b} OR bucket >= {lb_lo} AND bucket < {lb_hi})
      AND (v.slot = 1 OR v.slot = 2 AND n >= 2 OR v.slot = 3 AND n >= 4 OR v.slot = 4 AND n >= 3)"""
    inner = f"SELECT {q.key}bucket AS time, inc AS delta FROM {view} WHERE {whole} AND n >= 3"
    return _RATE.format(key=q.key, part=q.part, group=q.group, bucket=bucket_expr(dialect, "time"),
                        source=source, extra=f"UNION ALL {inner}")


def timescale_plan(*, kind: str, fn: str, step_s: float, many: bool = False) -> QueryPlan:
    agg = aggregate_for(step_s, fn) if kind == "num" else None
    if agg is None:
        return RawSQL.plan(kind=kind, fn=fn, step_s=step_s, dialect="timescale", many=many)
    view, width = agg
    return aggregate_plan(view=view, width=width, fn=fn, dialect="timescale", many=many)
