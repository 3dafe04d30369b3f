"""``GET /api/health`` (200 only when NATS and the database answer) and ``GET /metrics``."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import MediaType, Response, get

from ..service import HubDep


HEALTH_KEYS = ("name", "kind", "running", "status", "error", "lag_messages", "lag_seconds", "missed", "rejected")


class Health(msgspec.Struct):
    status: str  # "ok", "degraded" (answering, but background jobs fail) or "unhealthy"
    nats: bool
    database: bool
    ingest: bool  # false while ingest cannot write (database down) or is not running
    backend: str
    job_failures: list[dict[str, Any]]  # jobs whose latest run failed: name, consecutive failures, last error, next start
    samples_ingested: int
    consumer_pending: int
    hub_id: str = ""
    fleet_work: bool = False  # this hub is the elected one (maintenance, inventory mirror, alerting)
    leader: str | None = None  # the elected hub's id, as this hub last saw it
    last_maintenance: dict[str, Any] = {}  # what this hub's last maintenance did ({} if it never led)
    consumer_drift: dict[str, list[str]] = {}  # durable consumer → how its config differs (status degraded)
    outputs: list[dict[str, Any]] = []  # every output: status, lag, missed, error (GET /api/outputs has more)


async def _nats_ok(hub: HubDep) -> bool:
    if hub.nc is None or not hub.nc.is_connected:
        return False
    try:
        await asyncio.wait_for(hub.nc.flush(), 2.0)
        return True
    except Exception:  # noqa: BLE001 (any failure means "does not answer")
        return False


@get("/api/health", tags=["hub"], summary="Liveness of NATS, the database and ingest")
async def health(hub: HubDep) -> Response[Health]:
    storage = hub.require_storage()
    nats_ok, db_ok = await asyncio.gather(_nats_ok(hub), storage.ping())
    failures = await storage.job_failures() if db_ok else []
    hub.metrics.set_jobs(failures)
    ingest_ok = hub.ingest is not None and hub.ingest.db_ok and db_ok
    healthy = nats_ok and db_ok
    drift = dict(hub.ingest.drift) if hub.ingest is not None else {}
    outputs = hub.outputs.views() if hub.outputs is not None else []
    failing = hub.outputs.degraded() if hub.outputs is not None else []
    status = "unhealthy" if not healthy else ("degraded" if failures or not ingest_ok or drift or failing else "ok")
    body = Health(status, nats_ok, db_ok, ingest_ok, storage.backend, failures, hub.metrics.samples,
                  hub.metrics.pending, hub_id=hub.hub_id, fleet_work=hub.election.is_leader,
                  leader=hub.election.leader, last_maintenance=hub.last_maintenance, consumer_drift=drift,
                  outputs=[{k: o[k] for k in HEALTH_KEYS} for o in outputs])
    return Response(body, status_code=200 if healthy else 503)


@get("/metrics", tags=["hub"], summary="Self-metrics in Prometheus text format", media_type=MediaType.TEXT)
async def metrics(hub: HubDep) -> Response[str]:
    text = hub.metrics.render() + (hub.outputs.render_metrics() if hub.outputs is not None else "")
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
