"""How the agents holding devices say their collection goes: one ``status`` control request per agent
(``swtel.ctl.<agent>.status``, what ``swtel agent check --json`` prints), asked in parallel and bounded,
reduced to one ``collection`` object per device for ``swtel lease list --json`` and the hub's device API.

``collection`` is ``None`` when the holder did not answer in time (an old agent, a partition): the lease
is still shown, only the detail is missing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from nats.aio.client import Client as NATS

from . import naming

TIMEOUT_S = 1.0
KEYS = ("status", "down", "consecutive_failures", "errors", "last_error", "last_success_ns", "samples_per_s",
        "subscriptions")


async def agent_status(nc: NATS, agent: str, timeout: float = TIMEOUT_S) -> dict[str, Any] | None:
    try:
        msg = await nc.request(naming.ctl_subject(agent, "status"), b"", timeout=timeout)
        out = json.loads(msg.data)
    except Exception:  # no responders, timeout, a garbled answer: no detail, never an error
        return None
    return out if isinstance(out, dict) else None


async def by_device(nc: NATS, agents: Iterable[str], timeout: float = TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """device → its holder's view of the collection (status, last error, per-subscription detail)."""
    names = sorted(set(agents))
    answers = await asyncio.gather(*(agent_status(nc, a, timeout) for a in names))
    out: dict[str, dict[str, Any]] = {}
    for agent, status in zip(names, answers):
        for device, row in ((status or {}).get("devices") or {}).items():
            if isinstance(row, dict):
                out[device] = {"agent": agent, **{k: row[k] for k in KEYS if k in row}}
    return out
