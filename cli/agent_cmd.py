"""``swtel agent …``: agents present in ``swtel_agents``."""

from __future__ import annotations

from typing import Any

import typer

from swtel.shared.views import agent_view

from . import common

app = typer.Typer(help="Collector agents.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="print a JSON array")) -> None:
    """List live agents (those whose presence has not expired)."""
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
