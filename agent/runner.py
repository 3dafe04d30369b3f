"""``swtel agent run``: logging, signals (arq's ``handle_signals`` style) and the agent's lifetime.

Signal handlers only ask the agent to stop; the agent then stops slots and releases its leases within a
bounded time. A second SIGTERM/SIGINT cancels the run at once (leases then expire with the presence).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
import signal
import sys

from swtel.shared.natsconn import connect
from swtel.shared.sdnotify import Notifier
from swtel.shared.settings import Settings

from .agent import Agent, StatsProvider
from .slots import SlotFactory

log = logging.getLogger("swtel.agent")


def setup_logging(level: str) -> None:
    from swtel.shared.logs import setup

    setup(level)


async def serve(agent: Agent, *, handle_signals: bool = True, on_stop: Callable[[], None] | None = None) -> None:
    """Run the agent; the first SIGTERM/SIGINT asks it (and ``on_stop``, e.g. a hub in the same process)
    to stop gracefully."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("%s received: stopping gracefully", sig.name)
            agent.request_stop()
            if on_stop is not None:
                on_stop()
        elif task is not None:
            log.warning("%s received again: stopping now", sig.name)
            task.cancel()

    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        await agent.run()
    finally:
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


async def serve_collecting(settings: Settings, *, collect: bool = True,
                           on_stop: Callable[[], None] | None = None) -> None:
    """The agent process: collectors publishing on their own NATS connection (telemetry must not queue
    behind the lease watches), the agent, and systemd notifications (READY once the presence is written)."""
    notifier = Notifier()
    publish_nc = None
    slot_factory: SlotFactory | None = None
    stats_provider: StatsProvider | None = None
    if collect:
        from swtel.agent.collect import make_slot_factory, tune_gc

        publish_nc = await connect(settings, name=f"swtel-agent-publish:{settings.resolved_agent_id}",
                                   long_running=True)
        slot_factory, stats_provider = make_slot_factory(publish_nc, settings, settings.resolved_agent_id)
        tune_gc()
    agent = Agent(settings, slot_factory, stats_provider)

    async def tell_systemd() -> None:
        while agent.fenced:
            await asyncio.sleep(0.1)
        notifier.ready(f"agent {agent.id}")
        await notifier.run_watchdog()  # not tied to NATS health: an outage must not restart every agent

    watchdog = asyncio.create_task(tell_systemd(), name="sd-notify")
    try:
        await serve(agent, on_stop=on_stop)
    finally:
        notifier.stopping()
        watchdog.cancel()
        if publish_nc is not None:
            try:
                await asyncio.wait_for(publish_nc.drain(), 5)
            except Exception:  # noqa: BLE001 (shutting down; undelivered telemetry is re-collected)
                pass


def run_agent(settings: Settings, *, collect: bool = True) -> None:
    """Run one agent until SIGTERM/SIGINT. ``collect=False`` holds leases with idle slots (lease tests,
    benchmarks of the lease protocol alone)."""
    setup_logging(settings.log_level)
    try:
        asyncio.run(serve_collecting(settings, collect=collect))
    except asyncio.CancelledError:
        sys.exit(1)
