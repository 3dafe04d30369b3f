"""Alerting as one role object for the elected hub: evaluate every ``interval_s`` and deliver the outbox.

The hub starts it when it wins the fleet-work election and closes it when it loses (or stops). Losing
the election late is harmless: transitions are conditional and the outbox is claimed row by row, so a
brief overlap of two services makes no transition or notification twice.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from .engine import Engine
from .notify import Notifier
from .sources import DataSource

log = logging.getLogger("swtel.hub.alerts")


class AlertService:
    def __init__(self, pool: asyncpg.Pool, source: DataSource, *, interval_s: float = 60.0,
                 engine: Engine | None = None, notifier: Notifier | None = None) -> None:
        self.interval_s = interval_s
        self.notifier = notifier or Notifier(pool)
        self.engine = engine or Engine(pool, source, on_notify=self.notifier.wake)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.notifier.run())
            tg.create_task(self._evaluate_forever())

    async def _evaluate_forever(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    stats = await self.engine.evaluate_once()
                    if stats.transitions or stats.errors:
                        log.info("alert evaluation: %s", stats)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                    log.warning("alert evaluation skipped: database unavailable (%s)", type(e).__name__)
                except Exception:  # e.g. the data source failed to list devices: try again next period
                    log.exception("alert evaluation failed")
                try:
                    await asyncio.wait_for(self._stop.wait(), self.interval_s)
                except TimeoutError:
                    pass
        finally:
            self.notifier.close()

    def close(self) -> None:
        """Stop after the evaluation in flight; the notifier stops after its batch (sends are bounded)."""
        self._stop.set()
        self.notifier.close()
