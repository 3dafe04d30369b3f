"""``swtel run``: the role named by ``SWTEL_ROLE`` (agent, hub or both), as in the seed design's releases.

``both`` runs the hub and an agent in one process, for development: one signal stops both, the agent
releasing its leases while the hub finishes its current transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import typer

from swtel.shared.logs import setup as setup_logging

from . import common

ROLES = ("agent", "hub", "both")


def run(
    ctx: typer.Context,
    role: str | None = typer.Option(None, "--role", help="agent, hub or both (env SWTEL_ROLE)"),
) -> None:
    """Run this host's role from SWTEL_ROLE (agent, hub or both); settings as for `agent run` / `hub run`.

    Example: SWTEL_ROLE=agent swtel run
    """
    role = role or os.environ.get("SWTEL_ROLE", "")
    if role not in ROLES:
        raise typer.BadParameter(f"set SWTEL_ROLE or --role to one of {', '.join(ROLES)} (got {role!r})",
                                 param_hint="--role")
    s = common.settings(ctx)
    if role == "agent":
        from swtel.agent.runner import run_agent

        run_agent(s)
        return
    from .hub_cmd import build_server, check_port, preflight

    setup_logging(s.log_level)
    check_port(s.hub_host, s.hub_port)
    common.run(preflight(s))
    server = build_server(s)
    if role == "hub":
        asyncio.run(server.serve())
        return

    from swtel.agent.runner import serve_collecting

    # The agent's signal handler stops both; uvicorn must not take the signals (it re-raises them at exit,
    # which would end the process before the agent released its leases).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]

    async def both() -> None:
        await asyncio.gather(server.serve(), serve_collecting(s, on_stop=lambda: setattr(server, "should_exit", True)))

    asyncio.run(both())
