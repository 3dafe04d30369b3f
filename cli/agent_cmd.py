"""``swtel agent …``: agents present in ``swtel_agents``."""

from __future__ import annotations

from typing import Any

import typer

from swtel.shared.views import agent_view

from . import common

app = typer.Typer(help="Collector agents.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="print a JSON array")) -> None:
    """List live agents (those whose presence has not expired).

    Example: swtel agent list --json
    """
    s = common.settings(ctx)

    async def go() -> list[dict[str, Any]]:
        async with common.inventory(s) as inv:
            agents = await inv.agent_list()
        return [agent_view(a) for a in agents]

    rows = common.run(go())
    if json_out:
        common.print_json(rows)
        return
    common.print_table(
        ["ID", "HOST", "DEVICES", "CAPACITY", "DRAINING", "TAGS", "VERSION"],
        [(r["id"], r["host"], r["devices"], r["capacity"], "yes" if r["draining"] else "",
          ",".join(f"{k}={v}" for k, v in r["tags"].items()), r["version"]) for r in rows],
        empty="no live agents",
    )


def _parse_tags(items: list[str]) -> dict[str, str]:
    from swtel.shared.inventory import parse_tags

    return parse_tags(items)


@app.command("run")
def run_(
    ctx: typer.Context,
    agent_id: str | None = typer.Option(None, "--id", help="agent id (env SWTEL_AGENT_ID; default: the host name)"),
    capacity: int | None = typer.Option(None, "--capacity", min=1, help="most devices held; also the hashing weight"),
    tag: list[str] = typer.Option([], "--tag", help="agent tag k=v (repeatable), e.g. --tag site=dc1"),
    nats_url: str | None = typer.Option(None, "--nats", help="NATS URL(s) (same as the root --nats)"),
    collect: bool = typer.Option(True, "--collect/--no-collect",
                                 help="--no-collect holds leases without talking to devices (lease tests)"),
) -> None:
    """Run a collector agent: heartbeat, claim devices by weighted rendezvous order, collect until stopped.

    SIGTERM or SIGINT stops it gracefully (slots stopped, leases released); a second signal exits at once.

    Example: swtel agent run --id agent-dc1-a --capacity 500 --tag site=dc1
    """
    from swtel.agent.runner import run_agent

    flags: dict[str, Any] = {"agent_id": agent_id, "agent_capacity": capacity}
    if tag:
        flags["agent_tags"] = _parse_tags(tag)
    if nats_url:
        flags["nats_url"] = nats_url
    run_agent(common.settings(ctx, **flags), collect=collect)


def _control(ctx: typer.Context, agent: str, verb: str, timeout: float = 2.0) -> dict[str, Any]:
    import json

    from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

    from swtel.shared import naming
    from swtel.shared.errors import NotFound

    naming.check_name(agent, "agent id")
    s = common.settings(ctx)

    async def go() -> dict[str, Any]:
        async with common.connection(s) as nc:
            try:
                msg = await nc.request(naming.ctl_subject(agent, verb), b"", timeout=timeout)
            except (NoRespondersError, NatsTimeout):
                raise NotFound(f"agent {agent!r} is not running (no answer on its control subject)") from None
            return json.loads(msg.data)

    return common.run(go())


@app.command("drain")
def drain(ctx: typer.Context, agent: str = typer.Argument(..., help="agent id")) -> None:
    """Make a running agent hand all its devices to others and take no new ones (until undrain or restart).

    Example: swtel agent drain agent-dc1-a
    """
    st = _control(ctx, agent, "drain")
    common.console.print(f"agent {agent} is draining; it holds {len(st['devices'])} device(s) now")


@app.command("undrain")
def undrain(ctx: typer.Context, agent: str = typer.Argument(..., help="agent id")) -> None:
    """Let a drained agent take devices again.

    Example: swtel agent undrain agent-dc1-a
    """
    _control(ctx, agent, "undrain")
    common.console.print(f"agent {agent} takes devices again")


@app.command("check")
def check(
    ctx: typer.Context,
    agent_id: str | None = typer.Option(None, "--id", help="agent id (default: this host's agent)"),
    json_out: bool = typer.Option(False, "--json", help="print the agent's status as JSON"),
) -> None:
    """Exit 0 when the local agent answers and is healthy (presence valid, not fenced), else 1.

    Example: swtel agent check --id agent-dc1-a
    """
    s = common.settings(ctx, agent_id=agent_id)
    agent = s.resolved_agent_id
    try:
        st = _control(ctx, agent, "status")
    except Exception as e:
        common.err_console.print(f"unhealthy: {e}", highlight=False)
        raise typer.Exit(1) from None
    if json_out:
        common.print_json(st)
    ok = bool(st.get("healthy"))
    if not json_out:
        state = "healthy" if ok else ("fenced" if st.get("fenced") else "not ready")
        common.console.print(f"agent {agent} {state}: {len(st.get('devices', {}))} device(s), "
                             f"incarnation {st.get('incarnation')}")
    raise typer.Exit(0 if ok else 1)
