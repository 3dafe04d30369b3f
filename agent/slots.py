"""One collector slot per held device: started and stopped exactly when the claim says.

A slot is a task running ``slot_factory(device, token)`` until cancelled. Stopping cancels it and waits
(bounded) for it to exit; the caller releases or hands over the lease only afterwards, so two slots never
run for one device. Every transition is logged as one structured line with a wall-clock ``ts`` so tests
can check, across processes and even while NATS is paused, that no device ever had two active slots:
``started`` is logged before the task exists and ``stopped`` after it has exited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from swtel.shared import wire

log = logging.getLogger("swtel.agent.slots")

SlotFactory = Callable[[wire.Device, int], Awaitable[None]]
STOP_TIMEOUT_S = 3.0


async def idle_slot(device: wire.Device, token: int) -> None:
    """The slot used when no collector is wired in: it holds the place until cancelled."""
    await asyncio.Event().wait()


@dataclass
class Slot:
    device: wire.Device
    token: int
    task: asyncio.Task[None]


class Slots:
    def __init__(self, factory: SlotFactory | None = None) -> None:
        self.factory = factory or idle_slot
        self.active: dict[str, Slot] = {}
        self.failures = 0

    def __contains__(self, name: str) -> bool:
        return name in self.active

    def __len__(self) -> int:
        return len(self.active)

    def token(self, name: str) -> int | None:
        slot = self.active.get(name)
        return slot.token if slot else None

    def start(self, device: wire.Device, token: int) -> None:
        if device.name in self.active:
            raise RuntimeError(f"slot for {device.name} already active")  # a bug in the caller, never data
        log.info("slot started device=%s token=%d ts=%.6f", device.name, token, time.time())
        task = asyncio.create_task(self._guard(device, token), name=f"slot:{device.name}")
        self.active[device.name] = Slot(device, token, task)

    async def _guard(self, device: wire.Device, token: int) -> None:
        # A slot that fails must not take the agent down: count it, log it, and leave the place held
        # until the claim ends (the collector contract says collectors never raise for device trouble).
        try:
            await self.factory(device, token)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            log.exception("slot failed device=%s token=%d", device.name, token)
        await asyncio.Event().wait()

    async def stop(self, name: str, reason: str) -> None:
        slot = self.active.pop(name, None)
        if slot is None:
            return
        slot.task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._join(slot.task)), STOP_TIMEOUT_S)
        except TimeoutError:
            log.error("slot did not stop within %.0fs device=%s token=%d", STOP_TIMEOUT_S, name, slot.token)
        log.info("slot stopped device=%s token=%d reason=%s ts=%.6f", name, slot.token, reason, time.time())

    @staticmethod
    async def _join(task: asyncio.Task[None]) -> None:
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # already counted in _guard
            pass

    async def restart(self, device: wire.Device) -> None:
        """The device's inventory entry changed while held: same claim, same token, fresh slot."""
        slot = self.active.get(device.name)
        if slot is None:
            return
        await self.stop(device.name, "device_changed")
        self.start(device, slot.token)

    async def stop_all(self, reason: str) -> None:
        await asyncio.gather(*(self.stop(name, reason) for name in list(self.active)))
