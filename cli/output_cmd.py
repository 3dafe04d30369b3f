"""``swtel output add|list|show|remove|pause|resume``: outputs to Prometheus, VictoriaMetrics and InfluxDB.

Definitions live in the ``swtel_outputs`` KV bucket (like the inventory); secrets never do: ``--credential``
names a reference resolved on the hub hosts. ``add`` also creates the output's durable consumer, so its
position starts now even if no hub runs yet.
"""

from __future__ import annotations

from typing import Any

import msgspec
import typer
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from swtel.hub.outputs.model import KINDS, OutputDef, OutputStore, make_output
from swtel.shared import naming

from . import common

app = typer.Typer(help="Outputs to Prometheus (remote-write or scrape), VictoriaMetrics and InfluxDB.",
                  no_args_is_help=True)


async def _lag(js: Any, d: OutputDef) -> int | None:
    if d.kind == "scrape":
        return None
    try:
        info = await js.consumer_info(naming.STREAM_TELEMETRY, d.consumer)
    except (NotFoundError, NatsError):
        return None
    return (info.num_pending or 0) + (info.num_ack_pending or 0)


def _row(d: OutputDef, lag: int | None) -> dict[str, Any]:
    out = msgspec.to_builtins(msgspec.structs.asdict(d))  # defaults included
    out["consumer"] = None if d.kind == "scrape" else d.consumer
    out["lag_messages"] = lag
    return out


def _target(d: OutputDef) -> str:
    if d.kind == "scrape":
        return f"/metrics/devices/{d.name}"
    if d.kind == "influx":
        return f"{d.url} (v{d.influx_version} {d.database})"
    return d.url


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="output name (lower-case letters, digits, - _)"),
    kind: str = typer.Option(..., "--kind", help=f"one of {', '.join(KINDS)}"),
    url: str = typer.Option("", "--url", help="remote_write: the write URL (http://prom:9090/api/v1/write); "
                            "influx: the server's base URL (http://influx:8086)"),
    auth: str = typer.Option("none", "--auth", help="none, basic or bearer"),
    credential: str | None = typer.Option(None, "--credential", help="credential reference resolved on the hubs "
                                          "(basic: username/password; bearer: the password is the token)"),
    tls_ca: str | None = typer.Option(None, "--tls-ca", help="CA bundle on the hub hosts to verify https"),
    influx_version: int = typer.Option(1, "--influx-version", help="influx: 1 (/write) or 2 (/api/v2/write)"),
    database: str = typer.Option("", "--database", help="influx: v1 database or v2 bucket"),
    org: str = typer.Option("", "--org", help="influx v2: organisation"),
    device_tag: list[str] = typer.Option([], "--device-tag", help="inventory tag exported as a label (repeatable)"),
    states: str = typer.Option("map", "--states", help="string values: map (oper-status UP=1 …), drop, or info"),
    rule: list[str] = typer.Option([], "--rule", help="mapping override /path=name[:counter|gauge] or /path=drop "
                                   "(keys removed, * matches one element; repeatable)"),
    batch: int = typer.Option(256, "--batch", help="stream messages taken per fetch"),
    start: str = typer.Option("new", "--start", help="new: from now; all: everything still in the stream"),
    max_series: int = typer.Option(500_000, "--max-series", help="scrape: series held at most"),
) -> None:
    """Add an output; hubs start it within a second.

    Example: swtel output add prom --kind remote_write --url http://prom:9090/api/v1/write --auth basic --credential prom
    """
    d = make_output(name, kind, url=url, auth=auth, credential=credential, tls_ca=tls_ca,
                    influx_version=influx_version, database=database, org=org, device_tags=device_tag,
                    states=states, rules=rule, batch=batch, start=start, max_series=max_series)
    s = common.settings(ctx)

    async def go() -> None:
        async with common.jetstream(s) as js:
            await (await OutputStore.open(js)).add(d)

    common.run(go())
    common.console.print(f"output {d.name} added ({d.kind} → {_target(d)})", markup=False, highlight=False)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output")) -> None:
    """List outputs with their consumer's lag (messages not yet delivered).

    Example: swtel output list --json
    """
    s = common.settings(ctx)

    async def go() -> list[tuple[OutputDef, int | None]]:
        async with common.jetstream(s) as js:
            defs = await (await OutputStore.open(js)).list()
            return [(d, await _lag(js, d)) for d in defs]

    rows = common.run(go())
    if as_json:
        common.print_json([_row(d, lag) for d, lag in rows])
        return
    common.print_table(["NAME", "KIND", "TARGET", "STATE", "LAG"],
                       [(d.name, d.kind, _target(d), "paused" if d.paused else "active",
                         "-" if lag is None else lag) for d, lag in rows], empty="no outputs")


@app.command("show")
def show(ctx: typer.Context, name: str = typer.Argument(...),
         as_json: bool = typer.Option(False, "--json", help="JSON output")) -> None:
    """Show one output's definition and lag.

    Example: swtel output show prom --json
    """
    s = common.settings(ctx)

    async def go() -> tuple[OutputDef, int | None]:
        async with common.jetstream(s) as js:
            d, _ = await (await OutputStore.open(js)).get(name)
            return d, await _lag(js, d)

    d, lag = common.run(go())
    row = _row(d, lag)
    if as_json:
        common.print_json(row)
        return
    for k, v in row.items():
        common.console.print(f"{k:14} {v}", markup=False, highlight=False)


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove an output and its consumer (its position is lost).

    Example: swtel output remove prom
    """
    s = common.settings(ctx)

    async def go() -> None:
        async with common.jetstream(s) as js:
            await (await OutputStore.open(js)).remove(name)

    common.run(go())
    common.console.print(f"output {name} removed", markup=False, highlight=False)


def _pause(ctx: typer.Context, name: str, paused: bool) -> None:
    s = common.settings(ctx)

    async def go() -> None:
        async with common.jetstream(s) as js:
            await (await OutputStore.open(js)).set_paused(name, paused)

    common.run(go())
    common.console.print(f"output {name} {'paused (its position is kept)' if paused else 'resumed'}",
                         markup=False, highlight=False)


@app.command("pause")
def pause(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Stop delivering; the position is kept (until the stream's retention drops what it did not read).

    Example: swtel output pause prom
    """
    _pause(ctx, name, True)


@app.command("resume")
def resume(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Deliver again from where it stopped.

    Example: swtel output resume prom
    """
    _pause(ctx, name, False)
