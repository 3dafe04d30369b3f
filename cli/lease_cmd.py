"""``swtel lease list``: who collects which device."""

from __future__ import annotations

from typing import Any

import typer

from swtel.shared import collection
from swtel.shared.inventory import Inventory
from swtel.shared.views import lease_view

from . import common

app = typer.Typer(help="Device leases.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="print a JSON array")) -> None:
    """List device leases: holder agent, fencing token (the lease's KV revision) and, as the holder reports
    it, the collection status with each subscription's status and last error.

    Example: swtel lease list --json
    """
    s = common.settings(ctx)

    async def go() -> list[dict[str, Any]]:
        async with common.connection(s) as nc:
            leases = await (await Inventory.open(nc.jetstream(timeout=5))).lease_list()
            # each holder's own view of the collection (per-subscription detail); bounded, best effort
            seen = await collection.by_device(nc, {lease.agent for lease, _ in leases})
        rows = [lease_view(lease, rev) for lease, rev in leases]
        for r in rows:
            c = seen.get(r["device"])
            r["collection"] = c if c and c.get("agent") == r["agent"] else None
        return rows

    rows = common.run(go())
    if json_out:
        common.print_json(rows)
        return
    common.print_table(["DEVICE", "AGENT", "TOKEN", "STATUS", "SUBSCRIPTIONS"],
                       [(r["device"], r["agent"], r["token"], _status(r["collection"]), _subs(r["collection"]))
                        for r in rows],
                       empty="no leases: no agent holds a device yet")


def _status(c: dict[str, Any] | None) -> str:
    return "?" if not c else str(c.get("status", "?")) + (" (down)" if c.get("down") else "")


def _subs(c: dict[str, Any] | None) -> str:
    subs = (c or {}).get("subscriptions") or {}
    return " ".join(f"{name}:{s.get('status', '?')}" for name, s in sorted(subs.items()))
