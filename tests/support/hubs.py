"""Real ``swtel hub run`` processes for kill tests, and their ``/api/health`` as JSON."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx


def hub_proc(nats_url: str, database_url: str, port: int, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """A hub process (fast redelivery, quiet log) with extra ``SWTEL_*`` settings in ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
    full.update(SWTEL_HUB_FETCH_BATCH="64", SWTEL_HUB_ACK_WAIT_S="2", SWTEL_LOG_LEVEL="WARNING")
    full.update(env)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "swtel.cli", "hub", "run", "--nats", nats_url, "--db", database_url,
             "--host", "127.0.0.1", "--port", str(port)],
            env=full, stdout=out, stderr=subprocess.STDOUT,
        )


async def health(port: int) -> dict[str, Any] | None:
    """The hub's health document, or ``None`` while it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(f"http://127.0.0.1:{port}/api/health")
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code in (200, 503) else None
