"""``swtel lease list``: who collects which device."""

from __future__ import annotations

from typing import Any

import typer

from swtel.shared.views import lease_view

from . import common

app = typer.Typer(help="Device leases.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="print a JSON array")) -> None:
    """List device leases: holder agent and fencing token (the lease's KV revision).

    Example: swtel lease list --json
    """
    s = common.settings(ctx)

    async def go() -> list[dict[str, Any]]:
        async with common.inventory(s) as inv:
            leases = await inv.lease_list()
        return [lease_view(lease, rev) for lease, rev in leases]

    rows = common.run(go())
    if json_out:
        common.print_json(rows)
        return
    common.print_table(["DEVICE", "AGENT", "TOKEN"], [(r["device"], r["agent"], r["token"]) for r in rows],
                       empty="no leases: no agent holds a device yet")
