"""The JSON shapes of devices, agents and leases, shared by ``swtel … --json`` and the hub's REST API.

Keys are stable (scripts depend on them): devices lead with ``name``, ``address``, ``protocol``,
``agent``; leases with ``device``, ``agent``, ``token``; agents with ``id``, ``host``, ``devices``,
``draining``. Devices hold a credential *reference* only; no secret can appear here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import wire


def device_view(d: wire.Device, lease: wire.Lease | None = None, token: int | None = None) -> dict[str, Any]:
    return {
        "name": d.name,
        "address": d.address,
        "protocol": d.protocol,
        "agent": lease.agent if lease else None,
        "port": d.port,
        "platform": d.platform,
        "credential": d.credential,
        "tags": d.tags,
        "pinned": d.pinned,
        "tls": d.tls,
        "token": token,
        "subscriptions": [msgspec.to_builtins(s) for s in d.subscriptions],
    }


def agent_view(a: wire.AgentPresence) -> dict[str, Any]:
    return {
        "id": a.id,
        "host": a.host,
        "devices": a.devices,
        "draining": a.draining,
        "capacity": a.capacity,
        "tags": a.tags,
        "version": a.version,
        "incarnation": a.incarnation,
        "started_ns": a.started_ns,
    }


def lease_view(lease: wire.Lease, token: int) -> dict[str, Any]:
    return {
        "device": lease.device,
        "agent": lease.agent,
        "token": token,
        "incarnation": lease.incarnation,
        "acquired_ns": lease.acquired_ns,
    }
