"""The gNMI collector against each quirk of real targets the simulator has, for a while: how many
events, batches and sessions each one costs (issue 14: before the fixes a target refusing Subscribe
gave an up/down/error triple per retry, a quiet ON_CHANGE stream was reconnected every watchdog period,
a POLL target syncing once timed out every round).

    python -m bench.agent.quirks [--seconds 25]

Each quirk: one simulated switch (4 interfaces), one subscription at a 1 s interval, the collector run
in this process with an in-process recorder (no NATS: the figures are the collector's own).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from swtel.agent.collectors import gnmi
from swtel.agent.collectors.base import CollectorContext, Credential, DeviceStats
from swtel.agent.sim.gnmi_target import serve_gnmi
from swtel.agent.sim.model import Faults, SimDevice
from swtel.shared import inventory, wire

COUNTERS = ["/interfaces/interface/state/counters"]
QUIRKS: dict[str, tuple[Faults, str, list[str]]] = {
    "refuse-subscribe": (Faults(refuse_subscribe=True), "sample", COUNTERS),
    "no-heartbeat": (Faults(no_heartbeat=True), "on_change", ["/interfaces/interface/state/oper-status"]),
    "poll-sync-once": (Faults(poll_sync_once=True), "poll", COUNTERS),
    "ignore-paths": (Faults(ignore_paths=True), "sample", ["/interfaces/interface/state/counters/in-octets"]),
    "empty-unknown": (Faults(empty_unknown=True), "sample", ["/vendor/thing"]),
    "encodings=json_ietf (tag proto)": (Faults(encodings=("json_ietf",)), "sample", COUNTERS),
}


class _Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.batches = 0
        self.samples = 0

    async def batch(self, subscription: str, samples: list[wire.Sample]) -> None:
        self.batches += 1
        self.samples += len(samples)

    async def event(self, kind: str, detail: str = "") -> None:
        self.events.append(kind)

    async def config(self, format: str, text: str) -> bool:
        return True

    async def facts(self, facts: Any) -> bool:
        return True


async def one(name: str, seconds: float) -> str:
    faults, mode, paths = QUIRKS[name]
    fleet = await serve_gnmi([SimDevice("q", interfaces=4, faults=faults)], "127.0.0.1", [0], check_s=0.5)
    try:
        tags = {"gnmi-encoding": "proto"} if name.startswith("encodings") else {}
        dev = inventory.make_device("q", "127.0.0.1", "gnmi", port=fleet.ports[0], tags=tags)
        dev.subscriptions = [wire.Subscription("s", paths, mode, 1.0)]  # type: ignore[arg-type]
        rec = _Recorder()
        ctx = CollectorContext(dev, 1, rec, Credential("admin", "admin"), DeviceStats())  # type: ignore[arg-type]
        task = asyncio.create_task(gnmi.run(ctx))
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await fleet.close(0)
    kinds = {k: rec.events.count(k) for k in sorted(set(rec.events))}
    err = ctx.stats.last_error[:70]
    return (f"{name:32} {mode:9} events {len(rec.events):3} {kinds}  batches {rec.batches:3}  samples {rec.samples:5}"
            f"  subscribes {fleet.targets[0].subscribes:3}  status {ctx.stats.status}{'  ' + err if err else ''}")


async def main(seconds: float) -> None:
    for name in QUIRKS:
        print(await one(name, seconds), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=25.0)
    asyncio.run(main(ap.parse_args().seconds))
