"""``swtel agent run``: logging, signals (arq's ``handle_signals`` style) and the agent's lifetime.

Signal handlers only ask the agent to stop; the agent then stops slots and releases its leases within a
bounded time. A second SIGTERM/SIGINT cancels the run at once (leases then expire with the presence).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from swtel.shared.settings import Settings

from .agent import Agent, StatsProvider
from .slots import SlotFactory

log = logging.getLogger("swtel.agent")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("nats").setLevel(logging.WARNING)


async def serve(agent: Agent, *, handle_signals: bool = True) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("%s received: stopping gracefully", sig.name)
            agent.request_stop()
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


def run_agent(settings: Settings, slot_factory: SlotFactory | None = None,
              stats_provider: StatsProvider | None = None) -> None:
    """Run one agent until SIGTERM/SIGINT. Without a slot factory, slots are idle placeholders."""
    setup_logging(settings.log_level)
    try:
        asyncio.run(serve(Agent(settings, slot_factory, stats_provider)))
    except asyncio.CancelledError:
        sys.exit(1)
