"""Fleet work: what only the elected hub runs (hub/leader.py). Maintenance every ``MAINTAIN_EVERY_S``
(partitions, retention, ingest marks, events, alert history), the inventory mirror (the ``devices``
table, every ``SYNC_EVERY_S``: the same rows for every hub, so written once) and alerting (evaluation
and notifications).

Everything here is idempotent and safe to interrupt: maintenance statements each commit or do nothing,
and alerting's transitions and deliveries are guarded in the database (docs/ALERTING.md). So the hub
that takes over after a failover simply starts again: maintenance at once, alerts at the next evaluation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg

from swtel.shared import wire

from .alerts import db as alert_db
from .alerts.hubsource import HubSource
from .alerts.service import AlertService

if TYPE_CHECKING:
    from .service import HubCore

log = logging.getLogger("swtel.hub.fleet")
MAINTAIN_EVERY_S = 300.0
MAINTAIN_RETRY_S = 10.0
SYNC_EVERY_S = 30.0


class FleetWork:
    def __init__(self, hub: HubCore, down_devices: Callable[[], Awaitable[set[str]]] | None = None) -> None:
        self.hub = hub
        assert hub.pool is not None
        source = HubSource(hub.pool, self._devices, down_devices=down_devices)
        self.alerts = AlertService(hub.pool, source, interval_s=hub.settings.alert_interval_s)
        self._stop = asyncio.Event()

    async def _devices(self) -> list[wire.Device]:
        return await (await self.hub.inventory()).list()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._maintain_forever(), name="maintenance")
            tg.create_task(self._mirror_forever(), name="inventory-mirror")
            tg.create_task(self.alerts.run(), name="alerts")

    def close(self) -> None:
        self._stop.set()
        self.alerts.close()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _maintain_forever(self) -> None:
        while not self._stop.is_set():
            wait = MAINTAIN_EVERY_S
            try:
                await self.maintain_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log.warning("maintenance failed (%s); retrying soon", e)
                wait = MAINTAIN_RETRY_S
            await self._pause(wait)

    async def _mirror_forever(self) -> None:
        while not self._stop.is_set():
            await self.sync_inventory()
            await self._pause(SYNC_EVERY_S)

    async def sync_inventory(self) -> None:
        """Mirror the NATS inventory into the ``devices`` table for SQL joins (best effort)."""
        try:
            inv = await self.hub.inventory()
            devices = await inv.list()
            leases = {lease.device: (lease, tok) for lease, tok in await inv.lease_list()}
            rows = []
            for d in devices:
                lease, tok = leases.get(d.name, (None, None))
                rows.append((d.name, d.address, d.protocol, d.platform,
                             json.dumps(d.tags), lease.agent if lease else None, tok))
            await self.hub.require_storage().sync_devices(rows)
        except Exception as e:  # noqa: BLE001 (NATS, KV or database trouble: the next round retries)
            log.debug("inventory mirror not refreshed: %r", e)

    async def maintain_once(self) -> None:
        out = await self.hub.require_storage().maintain()
        async with self.hub.pool.acquire() as conn:  # type: ignore[union-attr]
            out.update(await alert_db.prune(conn, self.hub.settings.alert_history_days))
        out["at"] = time.time()
        self.hub.last_maintenance = out
        if any(v for k, v in out.items() if k.endswith(("_pruned", "_dropped"))):
            log.info("maintenance: %s", out)
