"""The state machine of one alert instance (rule × device × path), as a pure function.

    ok ──cond──► pending ──cond held for_s──► firing ──not cond──► resolved ──kept resolved_keep_s──► ok
     ▲              │ not cond                                        │ cond
     └──────────────┘                                                 └──► pending (or firing if for_s = 0)

``for_s = 0`` skips pending. An unknown condition (no value, no rate yet) changes nothing: a data gap is
what ``absent`` rules are for, not a reason to resolve or fire.
"""

from __future__ import annotations

from typing import Literal

State = Literal["ok", "pending", "firing", "resolved"]
STATES: tuple[State, ...] = ("ok", "pending", "firing", "resolved")


def next_state(
    state: State, since: float, cond: bool | None, now: float, for_s: float, resolved_keep_s: float
) -> State | None:
    """The state to move to, or ``None`` to stay. ``since`` is when ``state`` began (seconds)."""
    if state == "ok":
        if cond:
            return "firing" if for_s <= 0 else "pending"
    elif state == "pending":
        if cond is False:
            return "ok"
        if cond and now - since >= for_s:
            return "firing"
    elif state == "firing":
        if cond is False:
            return "resolved"
    elif state == "resolved":
        if cond:
            return "firing" if for_s <= 0 else "pending"
        if now - since >= resolved_keep_s:
            return "ok"
    return None
