"""``swtel assign plan``: preview who would collect what, and exactly which devices would move.

The preview uses the agents' own rule (``shared/rendezvous.plan`` over live, eligible agents), so what it
shows is what the fleet converges to once the change has settled.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import typer

from swtel.shared import naming, rendezvous
from swtel.shared.errors import InvalidInput

from . import common

app = typer.Typer(help="Device assignment.", no_args_is_help=True)


def preview(devices: list[Any], agents: list[Any], leases: list[tuple[Any, int]],
            without: list[str], with_: list[str], capacity: int) -> dict[str, Any]:
    specs = [rendezvous.DeviceSpec(d.name, d.pinned, dict(d.tags)) for d in devices]
    live = {a.id: rendezvous.Candidate(a.id, a.capacity, dict(a.tags), a.draining) for a in agents}
    unknown = [a for a in without if a not in live]
    if unknown:
        raise InvalidInput(f"--without {', '.join(unknown)}: no such live agent")
    after = {k: v for k, v in live.items() if k not in without}
    for a in with_:
        after.setdefault(a, rendezvous.Candidate(a, capacity))
    before_plan = rendezvous.plan(specs, live.values())
    after_plan = rendezvous.plan(specs, after.values())
    holders = {lease.device: lease.agent for lease, _ in leases}
    moves = [{"device": d, "from": before_plan[d], "to": after_plan[d], "holder": holders.get(d)}
             for d in sorted(after_plan) if before_plan.get(d) != after_plan[d]]
    now_c, before_c, after_c = Counter(holders.values()), Counter(before_plan.values()), Counter(after_plan.values())
    ids = sorted(set(live) | set(after))
    return {
        "agents": [{"agent": a, "holds": now_c.get(a, 0), "planned_now": before_c.get(a, 0),
                    "planned_after": after_c.get(a, 0), "change": "removed" if a in without else
                    ("added" if a not in live else "")} for a in ids],
        "unassigned_after": after_c.get(None, 0),
        "devices": len(specs),
        "moves": moves,
    }


@app.command("plan")
def plan(
    ctx: typer.Context,
    without: list[str] = typer.Option([], "--without", help="preview as if this live agent left (repeatable)"),
    with_: list[str] = typer.Option([], "--with", help="preview as if this agent joined (repeatable)"),
    capacity: int | None = typer.Option(None, "--capacity", min=1, help="capacity of the --with agents"),
    json_out: bool = typer.Option(False, "--json", help="print the preview as JSON"),
) -> None:
    """Preview ownership per agent and exactly which devices would move if agents left or joined.

    Example: swtel assign plan --without agent-dc1-a
    """
    for a in [*without, *with_]:
        naming.check_name(a, "agent id")
    s = common.settings(ctx)

    async def go() -> dict[str, Any]:
        async with common.inventory(s) as inv:
            devices, agents, leases = await inv.list(), await inv.agent_list(), await inv.lease_list()
        return preview(devices, agents, leases, without, with_, capacity or s.agent_capacity)

    out = common.run(go())
    if json_out:
        common.print_json(out)
        return
    common.print_table(["AGENT", "HOLDS", "PLANNED NOW", "PLANNED AFTER", "CHANGE"],
                       [(r["agent"], r["holds"], r["planned_now"], r["planned_after"], r["change"])
                        for r in out["agents"]], empty="no live agents and none added")
    n = out["devices"]
    moved = len(out["moves"])
    common.console.print(f"{moved} of {n} device(s) would move ({100.0 * moved / n if n else 0:.1f}%)"
                         + (f"; {out['unassigned_after']} without an eligible agent" if out["unassigned_after"] else ""))
    if out["moves"]:
        common.print_table(["DEVICE", "FROM", "TO"], [(m["device"], m["from"] or "-", m["to"] or "-")
                                                     for m in out["moves"]])
