"""The agent's heartbeat in ``swtel_agents/<agent>`` and the self-fencing deadline it earns.

One put per heartbeat, whatever the number of devices held. The server expires the entry ``presence_ttl_s``
after the last write *it* received; this side cannot read that clock, so it keeps its own monotonic
deadline measured from *before* the last successful write was sent, minus a margin. When the deadline
passes without a fresh success, the agent must stop every slot (``Agent._fence``): by then nobody can have
taken its devices, because others wait for the server to expire the presence.

The heartbeat runs in its own thread with its own NATS connection. On the agent's main connection, a put's
acknowledgement queues behind whatever the watchers are receiving (20,000 entries at a cold start with
10,000 devices) and the event loop is busy applying them; a heartbeat stuck behind that work would fence
a perfectly healthy agent. The thread only writes; every decision stays on the main loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from swtel.shared import naming, wire
from swtel.shared.natsconn import connect
from swtel.shared.settings import Settings

log = logging.getLogger("swtel.agent.presence")


def _version() -> str:
    try:
        return version("switch-telemetry")
    except PackageNotFoundError:
        return "0+unknown"


def new_incarnation() -> str:
    return secrets.token_hex(6)


class Presence:
    def __init__(self, settings: Settings, agent_id: str, devices: Callable[[], int] = lambda: 0) -> None:
        self.settings = settings
        self.agent_id = agent_id
        self.key = naming.encode_name(agent_id)
        self.devices = devices
        self.incarnation = new_incarnation()
        self.started_ns = time.time_ns()
        self.draining = False
        self.ttl = settings.presence_ttl_s  # lowered to the bucket's max age if that is shorter
        self.deadline = 0.0  # monotonic; acting on claims is allowed only before it (written by the thread)
        self.writes = 0
        self.failures = 0
        self.on_renewed: Callable[[], None] = lambda: None  # called on the main loop after each success
        self._main: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kv: Any = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None

    # ---- main-loop side -----------------------------------------------------------------------------------

    def valid(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.deadline

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def reincarnate(self) -> None:
        old, self.incarnation = self.incarnation, new_incarnation()
        self.started_ns = time.time_ns()
        log.warning("new incarnation agent=%s old=%s new=%s", self.agent_id, old, self.incarnation)

    async def start(self) -> None:
        """Connect the heartbeat thread and return once it is ready (its errors are raised here)."""
        self._main = asyncio.get_running_loop()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="swtel-heartbeat", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)

    async def beat_now(self) -> bool:
        """One write now (drain, undrain, leaving), outside the regular rhythm."""
        return await self._call(self._beat())

    async def remove(self) -> None:
        """Graceful stop: others see the agent leave at once instead of after the TTL."""
        await self._call(self._remove())

    async def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    async def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # ---- heartbeat thread -----------------------------------------------------------------------------------

    def value(self) -> bytes:
        s = self.settings
        return wire.encode_kv(wire.AgentPresence(
            id=self.agent_id, incarnation=self.incarnation, host=socket.gethostname(), version=_version(),
            capacity=s.agent_capacity, tags=dict(s.agent_tags), devices=self.devices(), draining=self.draining,
            started_ns=self.started_ns,
        ))

    def _thread_main(self, ready: Future[None]) -> None:
        try:
            asyncio.run(self._run(ready))
        except BaseException as e:  # noqa: BLE001 (reported to start() or logged; the thread must not die silently)
            if not ready.done():
                ready.set_exception(e)
            else:
                log.exception("heartbeat thread stopped")

    async def _run(self, ready: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._wake = asyncio.Event(), asyncio.Event()
        self._write_lock = asyncio.Lock()  # the presence delete at a graceful stop is the last write
        self._removed = False
        nc = await connect(self.settings, name=f"swtel-agent-presence:{self.agent_id}", long_running=True)
        try:
            self._kv = await nc.jetstream(timeout=2).key_value(naming.BUCKET_AGENTS)
            ready.set_result(None)
            hb = self.settings.heartbeat_s
            while not self._stop.is_set():
                started = time.monotonic()
                ok = await self._beat()
                delay = hb if ok else min(hb, 0.2)
                try:
                    await asyncio.wait_for(self._stop.wait(), max(0.0, started + delay - time.monotonic()))
                except TimeoutError:
                    pass
        finally:
            try:
                await asyncio.wait_for(nc.close(), 3)
            except Exception:
                pass

    async def _beat(self) -> bool:
        sent = time.monotonic()
        incarnation = self.incarnation
        try:
            async with self._write_lock:
                if self._removed:  # removed while this beat waited: writing now would revive us
                    return False
                # Never wait past the point where the write could no longer help.
                await asyncio.wait_for(self._kv.put(self.key, self.value()),
                                       max(0.2, self.ttl - self.settings.fence_margin_s))
        except Exception as e:  # timeouts, no responders, disconnects: all mean "not renewed"
            self.failures += 1
            log.debug("presence write failed: %r", e)
            return False
        self.writes += 1
        if incarnation == self.incarnation:  # a write of a superseded incarnation earns nothing
            self.deadline = max(self.deadline, sent + self.ttl - self.settings.fence_margin_s)
            if self._main is not None:
                self._main.call_soon_threadsafe(self.on_renewed)
        return True

    async def _remove(self) -> None:
        try:
            async with self._write_lock:
                self._removed = True  # no heartbeat after the delete: a late put would revive a leaving agent
                await asyncio.wait_for(self._kv.delete(self.key), 2.0)
        except Exception as e:
            log.warning("could not delete presence (it expires by itself): %r", e)
