"""``swtel device …``: the inventory in the ``swtel_devices`` KV bucket."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from swtel.shared import invsync
from swtel.shared.errors import InvalidInput, UserError
from swtel.shared.inventory import PLATFORMS, PROTOCOLS, edit_device, make_device, parse_tags
from swtel.shared.views import device_view

from . import common
from .device_files import InvalidFiles, read_devices, read_inventory

app = typer.Typer(help="Manage the device inventory.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="device name (host name or address)"),
    address: str = typer.Option(..., "--address", help="IP address or host name to connect to"),
    protocol: str = typer.Option(..., "--protocol", help=f"one of {', '.join(PROTOCOLS)}"),
    port: int | None = typer.Option(None, "--port", help="default: gnmi 9339, ssh 22, netconf 830, snmp 161"),
    platform: str = typer.Option("generic", "--platform", help=f"one of {', '.join(PLATFORMS)}"),
    credential: str | None = typer.Option(None, "--credential", help="credential reference, resolved on the agent host"),
    tag: list[str] = typer.Option([], "--tag", help="k=v, repeatable"),
    interval: str = typer.Option("10s", "--interval", help="sample interval: 10s, 500ms, 1m"),
    path: list[str] = typer.Option([], "--path", help="gNMI path to collect, repeatable (default: interfaces and system)"),
    tls: str = typer.Option("off", "--tls", help="gNMI TLS: off, on or skip-verify"),
) -> None:
    """Add a device to the inventory.

    Example: swtel device add leaf-01 --address 10.0.0.1 --protocol gnmi --platform eos --tag site=dc1
    """
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


STATUSES = ("collecting", "down", "unassigned")


async def _rows(s: Any) -> tuple[list[dict[str, Any]], str]:
    """Every device with its holder and status; a note instead of "down" when the database is not reachable."""
    async with common.inventory(s) as inv:
        devices = await inv.list()
        leases = {lease.device: (lease, rev) for lease, rev in await inv.lease_list()}
    # only a held device can be down (the agent holding it says so): no lease, no database round trip
    down, note = await _down_devices(s.database_url) if leases else (set(), "")
    rows = [device_view(d, *(leases.get(d.name) or (None, None))) for d in devices]
    for r in rows:
        r["status"] = "unassigned" if r["agent"] is None else ("down" if r["name"] in down else "collecting")
    return rows, note


async def _down_devices(dsn: str) -> tuple[set[str], str]:
    import asyncio

    import asyncpg

    from swtel.hub.storage.connect import redact_dsn

    try:
        async with asyncio.timeout(DB_TIMEOUT_S * 2):
            conn = await asyncpg.connect(dsn, timeout=DB_TIMEOUT_S)
            try:
                return {r["device"] for r in await conn.fetch("SELECT device FROM device_status WHERE down")}, ""
            finally:
                await conn.close()
    except asyncpg.UndefinedTableError:
        return set(), ""  # nothing recorded yet: nothing is down
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return set(), f"status: database at {redact_dsn(dsn)} not reachable ({reason}); down devices show as collecting"


def _matches(r: dict[str, Any], tags: dict[str, set[str]], agent: str | None, status: str | None,
             protocol: str | None) -> bool:
    return (all(r["tags"].get(k) in values for k, values in tags.items())
            and (agent is None or r["agent"] == agent)
            and (status is None or r["status"] == status)
            and (protocol is None or r["protocol"] == protocol))


@app.command("list")
def list_(
    ctx: typer.Context,
    tag: list[str] = typer.Option([], "--tag", help="only devices with this tag k=v (repeatable: every key must match; "
                                  "one key given twice matches either value)"),
    agent: str | None = typer.Option(None, "--agent", help="only devices this agent collects"),
    status: str | None = typer.Option(None, "--status", help=f"only devices in this state: {', '.join(STATUSES)}"),
    protocol: str | None = typer.Option(None, "--protocol", help=f"only devices of this protocol: {', '.join(PROTOCOLS)}"),
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
) -> None:
    """List devices with the agent that holds each and their status.

    Example: swtel device list --tag site=dc1 --status down
    """
    want_tags: dict[str, set[str]] = {}
    for t in tag:
        for k, v in parse_tags([t]).items():
            want_tags.setdefault(k, set()).add(v)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status {status!r} is unknown; use one of {', '.join(STATUSES)}")
    if protocol is not None and protocol not in PROTOCOLS:
        raise InvalidInput(f"protocol {protocol!r} is unknown; use one of {', '.join(PROTOCOLS)}")
    all_rows, note = common.run(_rows(common.settings(ctx)))
    rows = [r for r in all_rows if _matches(r, want_tags, agent, status, protocol)]
    if note:
        common.err_console.print(f"[dim]{note}[/dim]", highlight=False)
    if json_out:
        common.print_json(rows)
        return
    filtered = len(rows) != len(all_rows)
    common.print_table(
        ["NAME", "ADDRESS", "PORT", "PROTOCOL", "PLATFORM", "AGENT", "STATUS", "PINNED", "TAGS"],
        [
            (r["name"], r["address"], r["port"], r["protocol"], r["platform"], r["agent"] or "-", r["status"],
             r["pinned"] or "", ",".join(f"{k}={v}" for k, v in r["tags"].items()))
            for r in rows
        ],
        empty=("no device matches" if filtered else
               "no devices: add one with `swtel device add`, `swtel device import` or `swtel device sync`"),
    )
    common.err_console.print(f"[dim]{len(rows)} device(s)" + (f" of {len(all_rows)}" if filtered else "") + "[/dim]")


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    json_out: bool = typer.Option(False, "--json", help="print a JSON object"),
) -> None:
    """Show one device.

    Example: swtel device show leaf-01 --json
    """
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
                _say(f"{'subscription':12} {sub['name']}: {sub.get('mode', 'sample')} every "
                                     f"{sub.get('interval_s', 10)}s {' '.join(sub['paths'])}")
        else:
            _say(f"{key:12} {value if value not in (None, {}) else '-'}")
    if note:
        common.console.print(f"[dim]{note}[/dim]")
        return
    assert facts is not None
    for key in ("vendor", "model", "os_version", "serial", "hostname", "uptime_s", "gnmi_version"):
        if facts.get(key) not in (None, ""):
            _say(f"{key:12} {facts[key]}")
    if facts.get("encodings"):
        _say(f"{'encodings':12} {', '.join(facts['encodings'])}")
    _say(f"{'models':12} {len(facts.get('models', []))}")
    itfs = facts.get("interfaces", [])
    _say(f"{'interfaces':12} {len(itfs)}: " + ", ".join(
        f"{i['name']} {i.get('oper_status', '') or '?'}" for i in itfs[:8]) + (" …" if len(itfs) > 8 else ""))
    _say(f"{'discovered':12} {facts['discovered_at']} by {facts['agent']}")
    status = facts.get("status")
    if status:
        _say(f"{'down':12} {'yes since ' + status['since'] if status['down'] else 'no'}")
    for err in facts.get("errors", []):
        _say(f"{'discovery':12} {err}")


def _say(text: str) -> None:
    common.console.print(text, markup=False, highlight=False)  # data, not markup: gNMI paths hold [k=v]


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


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="device name"),
    address: str | None = typer.Option(None, "--address", help="new IP address or host name"),
    port: int | None = typer.Option(None, "--port", help="new port"),
    interval: str | None = typer.Option(None, "--interval", help="new sample interval of every subscription: 10s, 500ms, 1m"),
    tag: list[str] = typer.Option([], "--tag", help="k=v sets a tag, -k removes it (repeatable)"),
    path: list[str] = typer.Option([], "--path", help="collect these gNMI paths instead (repeatable)"),
    platform: str | None = typer.Option(None, "--platform", help=f"one of {', '.join(PLATFORMS)}"),
    credential: str | None = typer.Option(None, "--credential", help="credential reference ('' for none)"),
    tls: str | None = typer.Option(None, "--tls", help="gNMI TLS: off, on or skip-verify"),
) -> None:
    """Change some fields of a device; the others stay as they are.

    The write is a compare-and-set on the device's KV revision: if someone changed the device meanwhile,
    the change is applied again to their version, so neither overwrites the other.

    Example: swtel device set leaf-01 --interval 30s --tag role=spine --tag -rack
    """
    set_tags = parse_tags(t for t in tag if not t.startswith("-"))
    drop = [t[1:] for t in tag if t.startswith("-")]
    if any(not k for k in drop):
        raise InvalidInput("tag '-' names no key: use -KEY to remove a tag")
    fields = dict(address=address, port=port, interval=interval, platform=platform, credential=credential, tls=tls)
    if not path and not tag and all(v is None for v in fields.values()):
        raise InvalidInput("nothing to change: give at least one of --address, --port, --interval, --tag, --path, "
                           "--platform, --credential or --tls")
    s = common.settings(ctx)
    change = lambda d: edit_device(d, set_tags=set_tags, drop_tags=drop, paths=path or None, **fields)  # noqa: E731
    change(make_device(name, "127.0.0.1", "gnmi"))  # validate the flags before connecting

    async def go() -> tuple[dict[str, tuple[Any, Any]], int]:
        async with common.inventory(s) as inv:
            before, after, rev = await inv.edit(name, change)
        return invsync.diff(before, after), rev

    changed, rev = common.run(go())
    if not changed:
        common.console.print(f"{name}: no changes (revision {rev})", highlight=False)
        return
    common.console.print(f"{name} (revision {rev}): " + "; ".join(_fmt_change(k, a, b) for k, (a, b) in changed.items()),
                         markup=False, highlight=False, soft_wrap=True)


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items()) or "-"
    if isinstance(v, list):
        return " | ".join(map(str, v)) or "-"
    return "-" if v is None else str(v)


def _fmt_change(field: str, old: Any, new: Any) -> str:
    return f"{field} {_fmt(old)} → {_fmt(new)}"


@app.command("sync")
def sync(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., metavar="FILE|DIR...", help="inventory files (.yaml, .yml, .csv) or directories of them"),
    prune: bool = typer.Option(False, "--prune", help="also remove devices that are in no file"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, change nothing"),
    json_out: bool = typer.Option(False, "--json", help="print the plan (and the outcome) as JSON"),
) -> None:
    """Make the inventory equal to the files (inventory as code): plan, then apply.

    The plan lists what to add, what to change (with the fields) and, with --prune, what to remove; each
    device is then written with a compare-and-set. A second run says "no changes".

    Every problem of every file is listed (file:line: field) and nothing is changed then. A device someone
    changed after the plan was made is reported, not overwritten; the exit code is 1 when anything failed.

    Example: swtel device sync inventory/ --prune --dry-run
    """
    try:
        desired = read_inventory(paths)
    except InvalidFiles as e:
        if not json_out:
            raise
        common.print_json({"plan": None, "dry_run": dry_run, "outcome": None,
                           "errors": [p.to_json() for p in e.problems]})
        raise typer.Exit(2) from None
    s = common.settings(ctx)

    async def go() -> tuple[invsync.Plan, invsync.Outcome | None]:
        async with common.inventory(s) as inv:
            plan = invsync.plan(desired, await inv.entries(), prune=prune)
            if dry_run or plan.empty:
                return plan, None
            if not json_out:
                _print_plan(plan)
            total = len(plan.add) + len(plan.change) + len(plan.remove)
            prog, advance = common.progress_bar(total, "applying")
            with prog:
                return plan, await invsync.apply(inv, plan, progress=advance)

    plan, outcome = common.run(go())
    if json_out:
        common.print_json({"plan": plan.to_json(), "dry_run": dry_run,
                           "outcome": outcome.to_json() if outcome else None, "errors": []})
    elif plan.empty or dry_run:
        _print_plan(plan)
    if not json_out:
        if plan.unmanaged:
            common.err_console.print(f"[dim]{len(plan.unmanaged)} device(s) in the inventory are in no file and were "
                                     "kept (--prune removes them)[/dim]", highlight=False)
        if outcome is not None:
            common.console.print(f"applied: {outcome.added} added, {outcome.changed} changed, {outcome.removed} removed"
                                 + (f"; {len(outcome.failed)} failed" if outcome.failed else ""), highlight=False)
            for dev, why in outcome.failed.items():
                common.err_console.print(f"failed: {dev}: {why}", markup=False, highlight=False, soft_wrap=True)
    if outcome is not None and outcome.failed:
        if not json_out:
            common.err_console.print("run the sync again to plan the failed devices afresh", highlight=False)
        raise typer.Exit(1)


def _print_plan(plan: invsync.Plan) -> None:
    """The plan as plain lines, written at once: rich's per-line printing took seconds for 10,000 devices."""
    if plan.empty:
        lines = [f"no changes ({plan.unchanged} device(s) up to date)"]
    else:
        lines = [f"+ {d.name} ({d.protocol} {d.address}:{d.port})" for d in plan.add]
        lines += [f"~ {c.name}: " + "; ".join(_fmt_change(k, a, b) for k, (a, b) in c.fields.items()) for c in plan.change]
        lines += [f"- {name}" for name, _ in plan.remove]
        lines.append(f"plan: {len(plan.add)} to add, {len(plan.change)} to change, {len(plan.remove)} to remove, "
                     f"{plan.unchanged} unchanged")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove a device; its agent stops collecting it and releases the lease.

    Example: swtel device remove leaf-01
    """
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
    """Import new devices from YAML or CSV: all or nothing; every problem is listed with file, line and field.

    Names already in the inventory are refused; to update existing devices from files, use `swtel device sync`.

    Example: swtel device import fleet.yaml
    """
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
def pin(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="device name"),
    agent: str = typer.Argument(..., help="agent id"),
    force: bool = typer.Option(False, "--force", help="pin even to an agent that is not alive now"),
) -> None:
    """Pin a device to one agent: only that agent may collect it.

    An agent not seen alive is refused (a typo would stop collection), unless --force.

    Example: swtel device pin leaf-01 agent-dc1-a
    """
    s = common.settings(ctx)

    async def go() -> None:
        async with common.inventory(s) as inv:
            await inv.get(name)  # an unknown device is the first thing to say
            if not force:
                alive = sorted(a.id for a in await inv.agent_list())
                if agent not in alive:
                    seen = f"live agents: {', '.join(alive[:10])}" if alive else "no agent is alive now"
                    raise UserError(f"agent {agent!r} is not alive ({seen}); pin anyway with --force")
            await inv.pin(name, agent)

    common.run(go())
    common.console.print(f"pinned {name} to {agent}")


@app.command("unpin")
def unpin(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Let any eligible agent collect the device again.

    Example: swtel device unpin leaf-01
    """
    s = common.settings(ctx)

    async def go() -> None:
        async with common.inventory(s) as inv:
            await inv.pin(name, None)

    common.run(go())
    common.console.print(f"unpinned {name}")
