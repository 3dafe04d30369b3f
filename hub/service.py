"""The hub's running parts behind the web app: NATS, the database pool, storage, ingest, fleet work.

:class:`HubCore` is what request handlers reach (as the ``hub`` dependency). It connects what it was not
given, runs ingest and the fleet-work election as background tasks (the elected hub runs maintenance,
the inventory mirror and alerting: hub/fleet.py), and on ``stop()`` first hands fleet work over, then
lets ingest finish its current transaction for a bounded time, then cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from litestar.di import NamedDependency
from nats.aio.client import Client as NATS

from swtel.shared.inventory import Inventory
from swtel.shared.natsconn import connect
from swtel.shared.settings import Settings

from . import devstatus
from .fencing import LeaseLedger
from .fleet import FleetWork
from .ingest import Ingest
from .leader import Election
from .metrics import HubMetrics
from .outputs.manager import OutputManager
from .storage import Storage, open_storage
from .storage.connect import create_pool

log = logging.getLogger("swtel.hub")
JOB_CHECK_EVERY_S = 300.0  # as often as maintenance; /api/health also refreshes it
STOP_GRACE_S = 10.0


class HubCore:
    def __init__(self, settings: Settings, *, nc: NATS | None = None, pool: asyncpg.Pool | None = None,
                 ingest: bool = True) -> None:
        self.settings = settings
        self.nc = nc
        self.pool = pool
        self._own_nc = nc is None
        self._own_pool = pool is None
        self.run_ingest = ingest
        self.metrics = HubMetrics()
        self.storage: Storage | None = None
        self.ingest: Ingest | None = None
        self.outputs: OutputManager | None = None  # hub/outputs: push outputs run where fleet work runs
        self._ledger: LeaseLedger | None = None  # the outputs' own, on a hub without ingest
        self._inventory: Inventory | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.last_maintenance: dict[str, Any] = {}  # the last maintenance this hub ran (as the leader)
        self.hub_id = settings.resolved_hub_id
        # devices their agent reports down (hub/devstatus.py) count as silent for `absent` alert rules
        self.down_devices: Callable[[], Awaitable[set[str]]] | None = self._down_devices
        self.election = Election(settings, self.hub_id, lambda: FleetWork(self, self.down_devices),
                                 candidate=settings.hub_fleet_work, on_change=self._election_changed)

    async def _down_devices(self) -> set[str]:
        assert self.pool is not None
        return await devstatus.down_devices(self.pool)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._close_own()  # a failed startup leaves no connection behind
            raise

    async def _start(self) -> None:
        if self.nc is None:
            self.nc = await connect(self.settings, name="swtel-hub", long_running=True)
        if self.pool is None:
            self.pool = await create_pool(self.settings.database_url, max_size=self.settings.hub_ingest_workers + 4)
        self.storage = await open_storage(self.pool, self.settings)
        if self.run_ingest:
            self.ingest = Ingest(self.nc, self.storage, self.settings, self.metrics)
            await self.ingest.ensure_consumers()  # startup completes once ingest can pull
        if self.ingest is not None:
            ledger = self.ingest.ledger  # one ledger per hub: outputs fence by ingest's verdicts
        else:
            ledger = self._ledger = LeaseLedger(self.nc, self.pool)
            await ledger.start()
        self.outputs = OutputManager(self.nc, self.settings, ledger=ledger,
                                     is_active=lambda: self.election.is_leader, inventory=self.inventory)
        self._task = asyncio.create_task(self._run(), name="hub-core")
        log.info("hub started (backend %s, %d ingest workers)", self.storage.backend,
                 self.settings.hub_ingest_workers if self.run_ingest else 0)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if self.ingest is not None:
                tg.create_task(self.ingest.run(), name="ingest")
            tg.create_task(self._upkeep(), name="upkeep")
            if self.outputs is not None:
                tg.create_task(self.outputs.run(), name="outputs")
            tg.create_task(self.election.run(), name="election")

    async def stop(self) -> None:
        self._stop.set()
        await self.election.stop()  # its task stops the fleet work and frees the key for another hub
        if self.ingest is not None:
            await self.ingest.close()
        if self.outputs is not None:
            await self.outputs.close()
        if self._ledger is not None:
            await self._ledger.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_S)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception:  # noqa: BLE001 (a crashed task was already logged; stopping anyway)
                log.exception("hub task failed")
        await self._close_own()

    async def _close_own(self) -> None:
        if self._own_pool and self.pool is not None:
            await self.pool.close()
            self.pool = None
        if self._own_nc and self.nc is not None:
            await self.nc.close()
            self.nc = None

    def _election_changed(self, e: Election) -> None:
        self.metrics.fleet_leader, self.metrics.fleet_elected, self.metrics.fleet_fenced = (
            e.is_leader, e.elected, e.fenced)
        if self.outputs is not None:
            self.outputs.wake()

    # ---- helpers for handlers --------------------------------------------------------------------

    async def inventory(self) -> Inventory:
        if self._inventory is None:
            assert self.nc is not None
            self._inventory = await Inventory.open(self.nc.jetstream(timeout=5))
        return self._inventory

    def require_storage(self) -> Storage:
        assert self.storage is not None, "hub not started"
        return self.storage

    # ---- periodic upkeep -------------------------------------------------------------------------

    async def _upkeep(self) -> None:
        """Every hub: failing database jobs (latest runs) for health and metrics."""
        while not self._stop.is_set():
            try:
                self.metrics.set_jobs(await self.require_storage().job_failures())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log.debug("job failures not read: %r", e)
            try:
                await asyncio.wait_for(self._stop.wait(), JOB_CHECK_EVERY_S)
            except TimeoutError:
                pass


# What handlers declare to receive the hub: ``async def handler(hub: HubDep)``.
HubDep = NamedDependency[HubCore]
