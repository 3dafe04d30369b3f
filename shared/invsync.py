"""``swtel device sync``: make the inventory equal to a set of desired devices (inventory as code).

:func:`plan` is a pure function of the desired devices and the current inventory (with each device's KV
revision); :func:`apply` carries a plan out, every write a compare-and-set on the revision the plan read.
A device someone else changed after the plan is reported as a conflict, never overwritten, and the other
devices are still applied: running the sync again plans it afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.errors import Error as NatsError

from . import wire
from .errors import SwtelError
from .inventory import Inventory, same_device

# The fields a plan compares and shows, in this order ("v" is the encoding version, not the operator's).
FIELDS = ("address", "port", "protocol", "platform", "credential", "tls", "pinned", "tags", "subscriptions")


@dataclass(frozen=True)
class Change:
    name: str
    revision: int
    fields: dict[str, tuple[Any, Any]]  # field -> (current, desired), shown the way a file writes it
    device: wire.Device


@dataclass
class Plan:
    add: list[wire.Device] = field(default_factory=list)
    change: list[Change] = field(default_factory=list)
    remove: list[tuple[str, int]] = field(default_factory=list)  # (name, revision)
    unchanged: int = 0
    unmanaged: list[str] = field(default_factory=list)  # in the inventory, not in the files, kept (no --prune)

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.remove)

    def to_json(self) -> dict[str, Any]:
        return {
            "add": [describe(d) for d in self.add],
            "change": [{"name": c.name, "revision": c.revision,
                        "fields": {k: {"from": a, "to": b} for k, (a, b) in c.fields.items()}} for c in self.change],
            "remove": [{"name": n, "revision": r} for n, r in self.remove],
            "unchanged": self.unchanged,
            "unmanaged": self.unmanaged,
        }


def _shown(name: str, value: Any) -> Any:
    if name == "subscriptions":
        return [f"{s.name}: every {s.interval_s:g}s{'' if s.mode == 'sample' else ' ' + s.mode} {' '.join(s.paths)}"
                for s in value]
    return msgspec.to_builtins(value)


def describe(d: wire.Device) -> dict[str, Any]:
    return {"name": d.name, **{f: _shown(f, getattr(d, f)) for f in FIELDS}}


def diff(current: wire.Device, desired: wire.Device) -> dict[str, tuple[Any, Any]]:
    return {f: (_shown(f, getattr(current, f)), _shown(f, getattr(desired, f)))
            for f in FIELDS if getattr(current, f) != getattr(desired, f)}


def plan(desired: Iterable[wire.Device], current: dict[str, tuple[wire.Device, int]], *, prune: bool) -> Plan:
    """What to add, change and (with ``prune``) remove so that the inventory equals ``desired``."""
    out = Plan()
    wanted: set[str] = set()
    for d in sorted(desired, key=lambda d: d.name):
        wanted.add(d.name)
        have = current.get(d.name)
        if have is None:
            out.add.append(d)
        elif same_device(have[0], d):
            out.unchanged += 1
        else:
            out.change.append(Change(d.name, have[1], diff(have[0], d), d))
    extra = sorted(n for n in current if n not in wanted)
    if prune:
        out.remove = [(n, current[n][1]) for n in extra]
    else:
        out.unmanaged = extra
    return out


@dataclass
class Outcome:
    added: int = 0
    changed: int = 0
    removed: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # device -> why

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "changed": self.changed, "removed": self.removed, "failed": self.failed}


async def apply(
    inv: Inventory, p: Plan, *, progress: Callable[[int], Any] | None = None, concurrency: int = 64
) -> Outcome:
    """Carry out a plan, each write a compare-and-set; a write that fails is recorded, the rest go on."""
    out = Outcome()
    sem = asyncio.Semaphore(concurrency)

    async def one(name: str, write: Callable[[], Any], kind: str) -> None:
        async with sem:
            try:
                await write()
                setattr(out, kind, getattr(out, kind) + 1)
            except SwtelError as e:
                out.failed[name] = str(e)
            except (NatsError, TimeoutError) as e:  # one unanswered write must not cancel the others
                out.failed[name] = f"NATS did not take the write ({type(e).__name__}{': ' + str(e) if str(e) else ''})"
            if progress:
                progress(1)

    async with asyncio.TaskGroup() as tg:
        for d in p.add:
            tg.create_task(one(d.name, lambda d=d: inv.add(d), "added"))
        for c in p.change:
            tg.create_task(one(c.name, lambda c=c: inv.update_if(c.device, c.revision), "changed"))
        for name, rev in p.remove:
            tg.create_task(one(name, lambda n=name, r=rev: inv.remove_if(n, r), "removed"))
    out.failed = dict(sorted(out.failed.items()))
    return out
