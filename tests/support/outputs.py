"""Helpers of the output tests and benchmark: simulator telemetry with explicit times, what the hub stored,
and what a destination should hold for it under the default mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from swtel.agent.sim.model import SimDevice
from swtel.hub.outputs.mapping import OPER_STATUS, default_metric
from swtel.shared import wire

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Series = dict[tuple[str, tuple[tuple[str, str], ...]], dict[int, float]]  # (metric, labels) → {ms: value}


def sim_round(sim: SimDevice, k: int, t0_ns: int, *, seq: int, interfaces: int = 4) -> list[wire.TelemetryBatch]:
    """Round ``k`` of a simulated switch, ``k`` seconds after ``t0_ns``: counters, oper-status, CPU, memory."""
    now = sim.started + k
    ts = t0_ns + k * 1_000_000_000 + 123_456  # sub-millisecond part: outputs keep milliseconds
    samples = []
    for i, ifname in enumerate(sim.ifnames[:interfaces]):
        base = f"/interfaces/interface[name={ifname}]/state"
        samples += [wire.Sample(f"{base}/counters/{n}", v, ts) for n, v in sim.counters(i, now).items()]
        samples.append(wire.Sample(f"{base}/oper-status", sim.oper_status(i, now), ts))
    total, used = sim.memory(now)
    system = [wire.Sample("/system/cpus/cpu[index=0]/state/total/instant", sim.cpu_percent(now), ts),
              wire.Sample("/system/memory/state/physical", total, ts),
              wire.Sample("/system/memory/state/utilized", used, ts),
              wire.Sample("/components/component[name=CPU]/state/temperature/instant", sim.temperature(now), ts)]
    # token 0: publish_all claims a real lease for it (the hub stores only batches of a genuine lease)
    return [wire.TelemetryBatch(sim.name, "sim-agent", 0, seq, "interfaces", samples),
            wire.TelemetryBatch(sim.name, "sim-agent", 0, seq + 1, "system", system)]


async def publish_all(js: JetStreamContext, batches: list[wire.TelemetryBatch]) -> None:
    """Publish as the lease holder would (support.telemetry.publish claims the lease for token 0)."""
    from support.telemetry import publish

    for b in batches:
        await publish(js, b)


def key(device: str, path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    m = default_metric(path)
    return m.name, tuple(sorted({"device": device, **dict(m.labels)}.items()))


async def stored(database_url: str) -> Series:
    """Every numeric point the hub stored, under the default mapping's names, timestamps in ms."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT s.device, s.name, p.time, p.value FROM points p JOIN series s ON s.id = p.series_id")
    finally:
        await conn.close()
    out: Series = {}
    for r in rows:
        ms = (r["time"] - EPOCH) // timedelta(milliseconds=1)
        out.setdefault(key(r["device"], r["name"]), {})[ms] = float(r["value"])
    return out


def states(batches: list[wire.TelemetryBatch]) -> Series:
    """The oper-status samples as the default mapping exports them (UP=1, DOWN=2)."""
    out: Series = {}
    for b in batches:
        for s in b.samples:
            if isinstance(s.value, str):
                out.setdefault(key(b.device, s.path), {})[s.ts // 1_000_000] = float(OPER_STATUS[s.value])
    return out


def count(series: Series) -> int:
    return sum(len(v) for v in series.values())


def by_metric(series: Series, metric: str) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    return {labels: pts for (name, labels), pts in series.items() if name == metric}


def output_view(views: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((v for v in views if v["name"] == name), None)
