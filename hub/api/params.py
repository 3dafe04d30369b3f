"""Parsing of query parameters: times, steps and functions. Every problem is a 400 with a clear message."""

from __future__ import annotations

import re

import msgspec
from datetime import datetime, timedelta, timezone

from litestar.exceptions import ValidationException

from ..storage.query import FNS

MAX_POINTS = 11_000
INT4_MAX = 2**31 - 1  # PostgreSQL integer (series ids)
INT8_MAX = 2**63 - 1  # PostgreSQL bigint (alert, token, dead-letter ids)
MAX_STEP_S = 100 * 366 * 86400.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def bad(message: str) -> ValidationException:
    return ValidationException(detail=message)


def duration(text: str, what: str) -> float:
    m = _DURATION.match(text)
    if not m:
        raise bad(f"{what} {text!r} is not a duration such as 10s, 1m, 1h or a number of seconds")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _out_of_range(what: str, text: str) -> ValidationException:
    return bad(f"{what} {text!r} is out of range: times must fall between the years 1 and 9999")


def when(text: str | None, what: str, now: datetime, default: datetime) -> datetime:
    """RFC 3339, Unix seconds, ``now``, or ``now-1h`` / ``-1h`` relative to now."""
    if text is None or text == "":
        return default
    t = text.strip()
    if t == "now":
        return now
    rel = t[3:] if t.startswith("now") else t
    if rel.startswith("-") and not re.match(r"^-\d+(\.\d+)?$", rel):
        try:
            return now - timedelta(seconds=duration(rel[1:], what))
        except OverflowError:
            raise _out_of_range(what, text) from None
    try:
        seconds = float(t)
    except ValueError:
        seconds = None
    if seconds is not None:
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise _out_of_range(what, text) from None
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"{what} {text!r} is not a time: use RFC 3339, Unix seconds, now or now-1h") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def query_window(start: str | None, end: str | None, step: str | None) -> tuple[datetime, datetime, float]:
    now = datetime.now(timezone.utc)
    end_t = when(end, "end", now, now)
    try:
        default_start = end_t - timedelta(hours=1)
    except OverflowError:
        raise _out_of_range("end", end or "") from None
    start_t = when(start, "start", now, default_start)
    if start_t >= end_t:
        raise bad(f"start ({start_t.isoformat()}) must be before end ({end_t.isoformat()})")
    span = (end_t - start_t).total_seconds()
    step_s = duration(step, "step") if step else max(1.0, span / 300)
    if step_s < 1:
        raise bad(f"step {step!r} is shorter than 1s")
    if step_s > MAX_STEP_S:
        raise bad(f"step {step!r} is longer than 100 years")
    if span / step_s > MAX_POINTS:
        raise bad(f"{span / step_s:.0f} steps requested; at most {MAX_POINTS}: use a larger step or a shorter range")
    return start_t, end_t, step_s


def function(fn: str) -> str:
    if fn not in FNS:
        raise bad(f"fn {fn!r} is unknown; use one of {', '.join(FNS)}")
    return fn


def series_ids(text: str) -> list[int]:
    try:
        ids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise bad(f"series {text!r} must be a series id or comma-separated ids (see /api/series?device=…)") from None
    if not ids:
        raise bad("series is empty")
    if any(not 0 < i <= INT4_MAX for i in ids):
        raise bad(f"series ids are between 1 and {INT4_MAX}; {text!r} is not")
    if len(ids) > 50:
        raise bad("at most 50 series per query")
    return ids


def nul_guard(app):  # type: ignore[no-untyped-def]
    """ASGI middleware: a path or query parameter holding a NUL character (which PostgreSQL text cannot
    hold) is a 400 naming the parameter, before any handler runs."""
    from urllib.parse import parse_qsl

    async def guard(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            bad_name = None
            if "\x00" in scope.get("path", ""):
                bad_name = "path"
            else:
                for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
                    if "\x00" in k or "\x00" in v:
                        bad_name = k.replace("\x00", "\\x00")
                        break
            if bad_name is not None:
                body = msgspec.json.encode({"status_code": 400, "detail": f"{bad_name} contains a NUL character"})
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guard
