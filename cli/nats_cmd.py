"""``swtel nats init``: create or check the KV buckets and streams."""

from __future__ import annotations

import typer

from swtel.shared import buckets

from . import common

app = typer.Typer(help="NATS JetStream bootstrap.", no_args_is_help=True)


@app.command("init")
def init(
    ctx: typer.Context,
    replicas: int = typer.Option(1, "--replicas", help="1 for a single server, 3 for a cluster", min=1, max=5),
    check: bool = typer.Option(False, "--check", help="only report, create nothing"),
    json_out: bool = typer.Option(False, "--json", help="print the outcome as JSON"),
) -> None:
    """Create the buckets swtel_devices, swtel_agents, swtel_leases and the streams, or check them (idempotent).

    An existing bucket or stream with an incompatible configuration is reported and left unchanged.
    """
    if replicas not in (1, 3, 5):
        raise typer.BadParameter("use 1, 3 or 5 replicas", param_hint="--replicas")
    s = common.settings(ctx, nats_replicas=replicas)

    async def go() -> tuple[list[buckets.Outcome], bool, str]:
        async with common.connection(s) as nc:
            js = nc.jetstream(timeout=5)
            version = nc.connected_server_version
            markers = buckets.server_supports_markers(version)
            outcomes = await buckets.ensure(js, buckets.specs(s, replicas=replicas, markers=markers), check_only=check)
            return outcomes, markers, f"{version.major}.{version.minor}.{version.patch}"

    outcomes, markers, version = common.run(go())
    missing = check and any(o.action == "missing" for o in outcomes)
    if json_out:
        common.print_json([{"name": o.name, "kind": o.kind, "action": o.action, "detail": o.detail} for o in outcomes])
        raise typer.Exit(1 if missing else 0)
    common.print_table(["KIND", "NAME", "RESULT"], [(o.kind, o.name, o.action) for o in outcomes])
    if not markers:
        common.err_console.print(
            f"[yellow]nats-server {version} does not signal KV expiry (needs 2.11+): agents fall back to polling, "
            "and failover is slower.[/yellow]"
        )
    if missing:
        raise typer.Exit(1)
