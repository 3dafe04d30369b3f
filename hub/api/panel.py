"""``GET /api/panel``: what one dashboard widget shows, in one request.

A widget's query names devices (a name, a glob such as ``leaf-*``, a comma list, and/or a ``tag=value``
filter from the inventory) and a series name with wildcards (``/interfaces/interface[name=*]/state/
counters/in-octets``); the hub finds the matching series and buckets all of them in one SQL statement
(``GROUP BY series_id, bucket``), where ``/api/query`` takes one statement per series; both read the
same source (raw points or the 1 m / 1 h aggregates, hub/storage/query.py). ``top=N`` keeps the
N series with the highest value (last, avg or max over the range), for top-N widgets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.params import QueryParameter

from ..service import HubDep
from . import params

MAX_SERIES = 500
MAX_CELLS = 400_000  # series × buckets per answer: bounds the hub's memory and the page's work


class PanelSeries(msgspec.Struct):
    id: int
    device: str
    name: str  # full path with keys
    keys: dict[str, str]
    points: list[tuple[float, float]]  # [unix seconds of the bucket start, value]


class PanelOut(msgspec.Struct):
    start: float
    end: float
    step_s: float
    fn: str
    series: list[PanelSeries]
    matched: int  # series that matched, before top and limit
    truncated: bool  # more matched than the limit
    source: str = "points"  # the relation that answered, as in /api/query: points, points_1m or points_1h


def like_pattern(glob: str) -> str:
    """A glob (``*`` any text, ``?`` one character) as a LIKE pattern; other characters match themselves."""
    out = []
    for ch in glob:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise params.bad(f"tag {text!r} must be key=value, e.g. site=dc1")
    return key.strip(), value.strip()


def _rank(points: list[tuple[float, float]], by: str) -> float:
    if not points:
        return float("-inf")
    if by == "last":
        return points[-1][1]
    if by == "max":
        return max(v for _, v in points)
    return sum(v for _, v in points) / len(points)


async def _devices_with_tag(hub: HubDep, tag: str) -> list[str]:
    key, value = _tag(tag)
    return [d.name for d in await (await hub.inventory()).list() if d.tags.get(key) == value]


@get("/api/panel", tags=["dashboards"], summary="The series a dashboard widget shows, bucketed, in one call")
async def panel(
    hub: HubDep,
    path: Annotated[str, QueryParameter(description="series name with wildcards: * any text, ? one character, "
                                                   "e.g. /interfaces/interface[name=*]/state/counters/in-octets")],
    device: Annotated[str, QueryParameter(description="device name or glob (leaf-*), comma-separated; * for all")] = "*",
    tag: Annotated[str | None, QueryParameter(description="only devices with this inventory tag, key=value")] = None,
    start: Annotated[str | None, QueryParameter(description="RFC 3339, Unix seconds, or now-6h (default: end - 1h)")] = None,
    end: Annotated[str | None, QueryParameter(description="RFC 3339, Unix seconds, or now (default: now)")] = None,
    step: Annotated[str | None, QueryParameter(description="bucket width (default: range / 300)")] = None,
    fn: Annotated[str, QueryParameter(description="avg, max, min, last or rate (per second, reset-aware)")] = "avg",
    top: Annotated[int | None, QueryParameter(description="keep the N highest series (top-N widgets)", ge=1, le=100)] = None,
    rank: Annotated[str, QueryParameter(description="what top ranks by: last, avg or max")] = "last",
    limit: Annotated[int, QueryParameter(description=f"at most this many series (≤ {MAX_SERIES})", ge=1, le=MAX_SERIES)] = 100,
) -> PanelOut:
    start_t, end_t, step_s = params.query_window(start, end, step)
    fn = params.function(fn)
    if rank not in ("last", "avg", "max"):
        raise params.bad(f"rank {rank!r} is unknown; use last, avg or max")
    if not path.strip():
        raise params.bad("path is empty: give a series name, with * wildcards")
    storage = hub.require_storage()
    devices = [d.strip() for d in device.split(",") if d.strip()] or ["*"]
    where = ["kind = 'num'", "name LIKE $1"]
    args: list[Any] = [like_pattern(path.strip())]
    if devices != ["*"]:
        args.append([like_pattern(d) for d in devices])
        where.append(f"device LIKE ANY(${len(args)}::text[])")
    if tag:
        args.append(await _devices_with_tag(hub, tag))
        where.append(f"device = ANY(${len(args)}::text[])")
    cap = MAX_SERIES if top else limit  # top-N ranks among up to MAX_SERIES matches
    rows = await storage.pool.fetch(
        f"SELECT id, device, name, keys FROM series WHERE {' AND '.join(where)} ORDER BY device, name LIMIT {cap + 1}",
        *args)
    truncated = len(rows) > cap
    rows = rows[:cap]
    buckets = (end_t - start_t).total_seconds() / step_s
    if rows and len(rows) * buckets > MAX_CELLS:
        raise params.bad(f"{len(rows)} series × {buckets:.0f} steps is more than {MAX_CELLS} values: "
                         "narrow the path or device pattern, or use a larger step")
    points: dict[int, list[tuple[float, float]]] = {r["id"]: [] for r in rows}
    source = storage.plan(kind="num", fn=fn, step_s=step_s).source
    if rows:  # the source /api/query would read: 1 h / 1 m aggregates when the step allows
        source, points = await storage.query_many(list(points), start_t, end_t, step_s, fn)
    out = [PanelSeries(r["id"], r["device"], r["name"], msgspec.json.decode(r["keys"]) if isinstance(r["keys"], str)
                       else dict(r["keys"]), points[r["id"]]) for r in rows]
    matched = len(out)
    if top:
        out = sorted(out, key=lambda s: _rank(s.points, rank), reverse=True)[:top]
    elif len(out) > limit:
        out = out[:limit]
    return PanelOut(_ts(start_t), _ts(end_t), step_s, fn, out, matched, truncated, source)


def _ts(t: datetime) -> float:
    return t.timestamp()

