"""``swtel device …``: the inventory in the ``swtel_devices`` KV bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from swtel.shared.inventory import PLATFORMS, PROTOCOLS, make_device, parse_tags
from swtel.shared.views import device_view

from . import common
from .device_files import read_devices

app = typer.Typer(help="Manage the device inventory.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="device name (host name or address)"),
    address: str = typer.Option(..., "--address", help="IP address or host name to connect to"),
    protocol: str = typer.Option(..., "--protocol", help=f"one of {', '.join(PROTOCOLS)}"),
    port: int | None = typer.Option(None, "--port", help="default: gnmi 9339, ssh 22, netconf 830"),
    platform: str = typer.Option("generic", "--platform", help=f"one of {', '.join(PLATFORMS)}"),
    credential: str | None = typer.Option(None, "--credential", help="credential reference, resolved on the agent host"),
    tag: list[str] = typer.Option([], "--tag", help="k=v, repeatable"),
    interval: str = typer.Option("10s", "--interval", help="sample interval: 10s, 500ms, 1m"),
    path: list[str] = typer.Option([], "--path", help="gNMI path to collect, repeatable (default: interfaces and system)"),
    tls: str = typer.Option("off", "--tls", help="gNMI TLS: off, on or skip-verify"),
) -> None:
    """Add a device to the inventory."""
    dev = make_device(
        name, address, protocol, port=port, platform=platform, credential=credential,
        tags=parse_tags(tag), interval=interval, paths=path or None, tls=tls,
    )
    s = common.settings(ctx)

    async def go() -> None:
        async with common.inventory(s) as inv:
            await inv.add(dev)

    common.run(go())
    common.console.print(f"added {dev.name} ({dev.protocol} {dev.address}:{dev.port})")


async def _rows(s: Any) -> list[dict[str, Any]]:
    async with common.inventory(s) as inv:
        devices = await inv.list()
        leases = {lease.device: (lease, rev) for lease, rev in await inv.lease_list()}
    return [device_view(d, *(leases.get(d.name) or (None, None))) for d in devices]


@app.command("list")
def list_(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
) -> None:
    """List devices with the agent that holds each."""
    rows = common.run(_rows(common.settings(ctx)))
    if json_out:
        common.print_json(rows)
        return
    common.print_table(
        ["NAME", "ADDRESS", "PORT", "PROTOCOL", "PLATFORM", "AGENT", "PINNED", "TAGS"],
        [
            (r["name"], r["address"], r["port"], r["protocol"], r["platform"], r["agent"] or "-",
             r["pinned"] or "", ",".join(f"{k}={v}" for k, v in r["tags"].items()))
            for r in rows
        ],
        empty="no devices: add one with `swtel device add` or `swtel device import`",
    )
    common.err_console.print(f"[dim]{len(rows)} device(s)[/dim]")


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    json_out: bool = typer.Option(False, "--json", help="print a JSON object"),
) -> None:
    """Show one device."""
    s = common.settings(ctx)

    async def go() -> dict[str, Any]:
        async with common.inventory(s) as inv:
            dev, _ = await inv.get(name)
            leases = {lease.device: (lease, rev) for lease, rev in await inv.lease_list()}
        return device_view(dev, *(leases.get(dev.name) or (None, None)))

    row = common.run(go())
    facts, note = common.run(_facts(s.database_url, name))
    if json_out:
        common.print_json({**row, "facts": facts})
        if note:
            common.err_console.print(f"[dim]{note}[/dim]")
        return
    for key, value in row.items():
        if key == "subscriptions":
            for sub in value:
                common.console.print(f"{'subscription':12} {sub['name']}: {sub.get('mode', 'sample')} every "
                                     f"{sub.get('interval_s', 10)}s {' '.join(sub['paths'])}")
        else:
            common.console.print(f"{key:12} {value if value not in (None, {}) else '-'}")
    if note:
        common.console.print(f"[dim]{note}[/dim]")
        return
    assert facts is not None
    for key in ("vendor", "model", "os_version", "serial", "hostname", "uptime_s", "gnmi_version"):
        if facts.get(key) not in (None, ""):
            common.console.print(f"{key:12} {facts[key]}")
    if facts.get("encodings"):
        common.console.print(f"{'encodings':12} {', '.join(facts['encodings'])}")
    common.console.print(f"{'models':12} {len(facts.get('models', []))}")
    itfs = facts.get("interfaces", [])
    common.console.print(f"{'interfaces':12} {len(itfs)}: " + ", ".join(
        f"{i['name']} {i.get('oper_status', '') or '?'}" for i in itfs[:8]) + (" …" if len(itfs) > 8 else ""))
    common.console.print(f"{'discovered':12} {facts['discovered_at']} by {facts['agent']}")
    status = facts.get("status")
    if status:
        common.console.print(f"{'down':12} {'yes since ' + status['since'] if status['down'] else 'no'}")
    for err in facts.get("errors", []):
        common.console.print(f"{'discovery':12} [yellow]{err}[/yellow]")


DB_TIMEOUT_S = 2.0


async def _facts(dsn: str, name: str) -> tuple[dict[str, Any] | None, str]:
    """(facts, note): the device's discovered facts from the hub's database; a short note instead when the
    database cannot be reached or has none, so `device show` never fails for it."""
    import asyncio

    import asyncpg

    from swtel.hub import devstatus
    from swtel.hub.storage.connect import redact_dsn

    try:
        async with asyncio.timeout(DB_TIMEOUT_S * 2):
            conn = await asyncpg.connect(dsn, timeout=DB_TIMEOUT_S)
            try:
                facts = await devstatus.get_facts(conn, name)
                if facts is not None:
                    facts["status"] = await devstatus.device_status(conn, name)
            finally:
                await conn.close()
    except asyncpg.UndefinedTableError:
        return None, "facts: the database has no device_facts table yet (run `swtel db migrate`)"
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return None, f"facts: database at {redact_dsn(dsn)} not reachable ({reason})"
    if facts is None:
        return None, "facts: not discovered yet"
    return facts, ""


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove a device; its agent stops collecting it and releases the lease."""
    s = common.settings(ctx)

    async def go() -> None:
        async with common.inventory(s) as inv:
            await inv.remove(name)

    common.run(go())
    common.console.print(f"removed {name}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="YAML or CSV inventory file"),
) -> None:
    """Import devices from YAML or CSV: all or nothing, errors name file, line and field."""
    devices = read_devices(file)
    s = common.settings(ctx)

    async def go() -> None:
        prog, advance = common.progress_bar(len(devices), f"importing {file.name}")
        with prog:
            async with common.inventory(s) as inv:
                await inv.add_many(devices, progress=advance)

    common.run(go())
    common.console.print(f"imported {len(devices)} device(s) from {file}")


@app.command("pin")
def pin(ctx: typer.Context, name: str = typer.Argument(...), agent: str = typer.Argument(...)) -> None:
    """Pin a device to one agent: only that agent may collect it."""
    s = common.settings(ctx)

    async def go() -> None:
        async with common.inventory(s) as inv:
            await inv.pin(name, agent)

    common.run(go())
    common.console.print(f"pinned {name} to {agent}")


@app.command("unpin")
def unpin(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Let any eligible agent collect the device again."""
    s = common.settings(ctx)

    async def go() -> None:
        async with common.inventory(s) as inv:
            await inv.pin(name, None)

    common.run(go())
    common.console.print(f"unpinned {name}")
