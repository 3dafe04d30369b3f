"""Reading config backups: a device's versions, one version's text, a unified diff between two versions.

Used by the REST API (hub/api/configs.py) and the CLI (``swtel config``), on a pool or a connection.
A version is a backup's number among the device's backups, oldest first, starting at 1; the table only
holds changed configurations (the ingest compares content hashes), so consecutive versions always differ.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any, Protocol

from swtel.shared.errors import InvalidInput, NotFound


class Db(Protocol):  # asyncpg.Pool or asyncpg.Connection
    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


_VERSIONS = ("SELECT row_number() OVER (ORDER BY time, id) AS version, time, agent, token, format, sha256, "
             "octet_length(content) AS size{content} FROM config_backups WHERE device = $1")


def _row(r: Any) -> dict[str, Any]:
    out = dict(r)
    t: datetime = out.pop("time")
    out["time"] = t.timestamp()
    return out


async def _no_versions(db: Db, device: str) -> NotFound:
    known = await db.fetchval("SELECT EXISTS (SELECT 1 FROM devices WHERE name = $1)", device)
    return NotFound(f"device {device!r} has no config backups yet" if known
                    else f"device {device!r} does not exist or has no config backups")


async def versions(db: Db, device: str, *, must_exist: bool = False) -> list[dict[str, Any]]:
    """Every stored version, oldest first: version, time (Unix s), agent, token, format, sha256, size."""
    rows = [_row(r) for r in await db.fetch(_VERSIONS.format(content="") + " ORDER BY version", device)]
    if not rows and must_exist:
        raise await _no_versions(db, device)
    return rows


async def version(db: Db, device: str, number: int | None = None) -> dict[str, Any]:
    """One version with its ``text``; ``None`` is the latest; a negative number counts from the latest."""
    sql = f"SELECT * FROM ({_VERSIONS.format(content=', content AS text')}) v "
    if number is None or number < 0:
        r = await db.fetchrow(sql + "ORDER BY version DESC OFFSET $2 LIMIT 1", device, -(number or -1) - 1)
    elif number == 0:
        raise InvalidInput("versions are numbered from 1")
    else:
        r = await db.fetchrow(sql + "WHERE version = $2", device, number)
    if r is None:
        count = len(await versions(db, device, must_exist=True))
        raise NotFound(f"device {device!r} has no config version {number} (versions 1..{count})")
    return _row(r)


async def diff(db: Db, device: str, a: int | None = None, b: int | None = None) -> dict[str, Any]:
    """Unified diff from version ``a`` to ``b`` (default: the previous version to the latest; ``a`` alone:
    from ``a`` to the latest)."""
    if a is None and b is None and len(await versions(db, device, must_exist=True)) < 2:
        raise NotFound(f"device {device!r} has one config version only: nothing to compare yet")
    old = await version(db, device, -2 if a is None and b is None else a)
    new = await version(db, device, b)
    lines = difflib.unified_diff(old["text"].splitlines(keepends=True), new["text"].splitlines(keepends=True),
                                 fromfile=f"{device} version {old['version']}", tofile=f"{device} version {new['version']}")
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return {"device": device, "a": old["version"], "b": new["version"], "a_time": old["time"],
            "b_time": new["time"], "diff": text}
