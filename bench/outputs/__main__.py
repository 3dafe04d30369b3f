"""Outputs benchmark: samples/s per output kind and hub CPU-s per million samples, beside ingest to PostgreSQL.

    python -m bench.outputs [--batches 2000] [--samples 100] [--devices 200] [--runs 3]

Starts its own nats-server (free loopback port), VictoriaMetrics, Prometheus (remote-write receiver) and
InfluxDB 1.x (Debian's packages; temporary data directories) and uses PostgreSQL from
$SWTEL_BENCH_DATABASE_URL (admin DSN; default postgresql://postgres@127.0.0.1:5432/postgres) in a fresh
database dropped afterwards. Each run fills the stream with ``batches`` x ``samples`` fresh samples, then:

1. ingest alone: one hub (HubCore, ingest only) drains it into PostgreSQL;
2. each output kind alone, in the same process: remote-write → VictoriaMetrics, remote-write → Prometheus,
   line protocol → InfluxDB 1.x, scrape (kept in memory);
3. everything at once: one hub with ingest and all four outputs on the same stream.

Each device's batches carry a real lease revision, claimed once per benchmark (a steady fleet); each output
fences by a lease ledger warmed beforehand, as a hub's is once ingest has checked those leases.
Rates are samples delivered / wall time from start to the last acknowledgement; CPU is this process's
(the hub's) CPU time per million samples — the destination servers and nats-server run in other processes
on the same two cores. Prints medians of ``runs``. Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import nats
import nats.errors

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the test harness's destination servers

from support import tsdb  # noqa: E402
from swtel.cli.embedded import EmbeddedNats  # noqa: E402
from swtel.hub.fencing import LeaseLedger  # noqa: E402
from swtel.hub.outputs.manager import OutputManager  # noqa: E402
from swtel.hub.outputs.model import OutputStore, make_output  # noqa: E402
from swtel.hub.service import HubCore  # noqa: E402
from swtel.hub.storage.migrate import migrate  # noqa: E402
from swtel.shared import buckets, naming, settings, wire  # noqa: E402

ADMIN = os.environ.get("SWTEL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_NS = time.time_ns() - 1_800_000_000_000  # half an hour ago: within every receiver's accepted window
FILLS = 0
TOKENS: dict[int, int] = {}  # device number → its lease revision
PATHS = ("in-octets", "out-octets", "in-pkts", "out-pkts", "in-errors")


def batch(device: int, seq: int, samples: int, ts: int, token: int) -> bytes:
    per_if = len(PATHS)
    rows = [wire.Sample(f"/interfaces/interface[name=Ethernet{i // per_if}]/state/counters/{PATHS[i % per_if]}",
                        seq * 1000 + i, ts) for i in range(samples)]
    return wire.encode(wire.telemetry(f"sw{device:04d}", "bench", token, seq, "interfaces", wire.Columns.of(rows)))  # v2, as agents write


async def fill(nats_url: str, n: int, samples: int, devices: int, run: int) -> None:
    """A fresh stream of ``n`` batches; timestamps grow per device so no destination sees old samples."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30)
    await js.purge_stream(naming.STREAM_TELEMETRY)
    global FILLS
    FILLS += 1  # each fill's samples are newer than the last fill's (receivers refuse old or out-of-order ones)
    ts0 = START_NS + FILLS * 120_000_000_000
    # each device's batches carry a real lease revision, as an agent's do: the hub's fencing stores only those
    from support.telemetry import claim

    # claimed once per benchmark: leases stay put across fills, as in a steady fleet
    for dev in range(devices):
        if dev not in TOKENS:
            TOKENS[dev] = await claim(js, f"sw{dev:04d}", "bench")
    tokens = TOKENS
    msgs = []
    for k in range(n):
        dev, seq = k % devices, run * 1_000_000 + k + 1
        msgs.append((naming.telemetry_subject(f"sw{dev:04d}", "interfaces"),
                     batch(dev, seq, samples, ts0 + (k // devices) * 1_000_000_000, tokens[dev]),
                     naming.msg_id(f"sw{dev:04d}", tokens[dev], seq)))
    for i in range(0, len(msgs), 256):
        await asyncio.gather(*(js.publish(s, d, headers={"Nats-Msg-Id": mid}) for s, d, mid in msgs[i:i + 256]))
    await nc.close()


async def add_outputs(nats_url: str, defs: list[Any]) -> None:
    nc = await nats.connect(nats_url)
    store = await OutputStore.open(nc.jetstream(timeout=10))
    for d in defs:
        await store.add(d)
    await nc.close()


async def remove_outputs(nats_url: str, defs: list[Any]) -> None:
    nc = await nats.connect(nats_url)
    store = await OutputStore.open(nc.jetstream(timeout=10))
    for d in defs:
        await store.remove(d.name)
    await nc.close()


async def wait(cond: Any, timeout: float = 300, show: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the benchmark did not finish in time: {show() if show else ''}")
        await asyncio.sleep(0.01)


def kinds(servers: dict[str, Any], tag: str) -> list[Any]:
    return [
        make_output(f"vm-rw-{tag}", "remote_write", url=servers["vm"].url + "/api/v1/write", start="all", batch=512),
        make_output(f"prom-rw-{tag}", "remote_write", url=servers["prom"].url + "/api/v1/write", start="all", batch=512),
        make_output(f"influx-{tag}", "influx", url=servers["influx"].url, database="swtel", start="all", batch=512),
        make_output(f"scrape-{tag}", "scrape", max_series=2_000_000),
    ]


LABELS = {"vm-rw": "remote-write → VictoriaMetrics", "prom-rw": "remote-write → Prometheus",
          "influx": "line protocol → InfluxDB 1.x", "scrape": "scrape (newest value per series)"}


async def set_paused(nats_url: str, name: str, paused: bool) -> None:
    nc = await nats.connect(nats_url)
    await (await OutputStore.open(nc.jetstream(timeout=10))).set_paused(name, paused)
    await nc.close()


async def output_alone(s: settings.Settings, d: Any, a: Any, run: int) -> tuple[float, float]:
    """One output in a hub's OutputManager. Push kinds drain the filled stream; the scrape kind follows
    the stream live (it starts from the newest batch per subject), so it is started first and the stream
    is filled while it runs (the fill's publishing CPU is then counted too)."""
    total = a.batches * a.samples
    nc = await nats.connect(s.nats_url)
    pool = await asyncpg.create_pool(s.database_url, min_size=1, max_size=2)
    ledger = LeaseLedger(nc, pool)  # the hub's fencing, as a hub's outputs use it (shared with ingest there)
    await ledger.start()
    # warm, as on a hub where ingest has already checked these leases (not timed)
    await ledger.verdicts({(f"sw{dev:04d}", "bench", tok) for dev, tok in TOKENS.items()})
    m = OutputManager(nc, s, ledger=ledger)
    d.paused = True  # added paused: the clock starts when it is resumed, not at the manager's first poll
    await add_outputs(s.nats_url, [d])
    task = asyncio.create_task(m.run())
    try:
        await wait(lambda: d.name in m.states)
        show = lambda: [st.view() for st in m.states.values()]  # noqa: E731
        await set_paused(s.nats_url, d.name, False)
        c0, t0 = time.process_time(), time.perf_counter()
        m.wake()
        if d.kind == "scrape":
            await wait(lambda: m.states[d.name].running, show=show)
            c0, t0 = time.process_time(), time.perf_counter()
            await fill(s.nats_url, a.batches, a.samples, a.devices, run + 50)
        await wait(lambda: m.states[d.name].messages >= a.batches, show=show)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        st = m.states[d.name]
        assert st.rejected == 0 and st.missed == 0, st.view()
        return total / dt, cpu / total * 1e6
    finally:
        await m.close()
        await task
        await ledger.close()
        await pool.close()
        await nc.close()
        await remove_outputs(s.nats_url, [d])


async def one_run(s: settings.Settings, db_url: str, servers: dict[str, Any], a: Any, run: int) -> dict[str, Any]:
    total = a.batches * a.samples
    out: dict[str, Any] = {}
    await fill(s.nats_url, a.batches, a.samples, a.devices, run)
    hub = HubCore(settings.load({**s.redacted(), "hub_consumer": f"bench-{run}", "hub_fleet_work": False}, env={}))
    c0, t0 = time.process_time(), time.perf_counter()
    await hub.start()
    await wait(lambda: hub.metrics.samples >= total)
    out["ingest"] = (total / (time.perf_counter() - t0), (time.process_time() - c0) / total * 1e6)
    print(f"  ingest alone: {out['ingest'][0]:,.0f} samples/s, {out['ingest'][1]:.2f} CPU-s/M", flush=True)
    await hub.stop()

    for d in kinds(servers, f"a{run}"):
        k = d.name.rsplit("-", 1)[0]
        out[k] = await output_alone(s, d, a, run)
        print(f"  {k} alone: {out[k][0]:,.0f} samples/s, {out[k][1]:.2f} CPU-s/M", flush=True)

    # everything at once, live: the hub runs ingest and all outputs while the stream is filled
    nc = await nats.connect(s.nats_url)
    await nc.jetstream().purge_stream(naming.STREAM_TELEMETRY)
    await nc.close()
    defs = kinds(servers, f"b{run}")
    await add_outputs(s.nats_url, defs)
    hub = HubCore(settings.load({**s.redacted(), "hub_consumer": f"bench-all-{run}"}, env={}))
    await hub.start()
    assert hub.outputs is not None
    outs = hub.outputs
    await wait(lambda: all(outs.states.get(d.name) is not None and outs.states[d.name].running for d in defs))
    c0, t0 = time.process_time(), time.perf_counter()
    await fill(s.nats_url, a.batches, a.samples, a.devices, run + 100)
    done: dict[str, float] = {}
    js = hub.nc.jetstream(timeout=10)  # type: ignore[union-attr]
    last = 0
    while not last:
        try:
            last = (await js.stream_info(naming.STREAM_TELEMETRY)).state.last_seq
        except nats.errors.TimeoutError:
            pass  # a loaded machine
    deadline = time.monotonic() + 600
    while len(done) < len(defs) + 1:  # done = acknowledged up to the stream's end (push), all seen (scrape)
        now = time.perf_counter()
        if "ingest" not in done and hub.metrics.samples >= total:
            done["ingest"] = now
        for d in defs:
            if d.name in done:
                continue
            if d.kind == "scrape":
                st = outs.states.get(d.name)
                if st is not None and st.messages >= a.batches:
                    done[d.name] = now
            else:
                try:
                    if (await js.consumer_info(naming.STREAM_TELEMETRY, d.consumer)).ack_floor.stream_seq >= last:
                        done[d.name] = now
                except nats.errors.TimeoutError:
                    pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"not finished: {[st.view() for st in outs.states.values()]}")
        await asyncio.sleep(0.05)
    cpu = time.process_time() - c0
    await hub.stop()
    await remove_outputs(s.nats_url, defs)
    out["together"] = {k.rsplit("-", 1)[0] if k != "ingest" else k: total / (v - t0) for k, v in done.items()}
    out["together_cpu"] = cpu / total * 1e6
    out["together_faults"] = {d.name: (outs.states[d.name].rejected, outs.states[d.name].missed) for d in defs}
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    name = f"swtel_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    print(f"database {name} (dropped at the end)", flush=True)
    head, _, _ = ADMIN.rpartition("/")
    db_url = f"{head}/{name}"
    srv = EmbeddedNats(Path(tempfile.mkdtemp(prefix="swtel-bench-")))
    srv.start()
    servers = {"vm": tsdb.VictoriaMetrics(), "prom": tsdb.Prometheus(), "influx": tsdb.InfluxDB1()}
    try:
        for x in servers.values():
            x.start()
        servers["influx"].query("CREATE DATABASE swtel")
        s = settings.load({"nats_url": srv.url, "database_url": db_url, "stream_max_bytes": 8 * 1024**3}, env={})
        nc = await nats.connect(srv.url)
        await buckets.ensure(nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
        await nc.close()
        conn = await asyncpg.connect(db_url)
        await migrate(conn, s)
        await conn.close()
        runs = []
        for run in range(a.runs):
            r = await one_run(s, db_url, servers, a, run)
            runs.append(r)
            print(f"run {run + 1}: rejected/missed together {r['together_faults']}", flush=True)
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[0]:,.0f}/s" for k, v in r.items() if isinstance(v, tuple))
                  + " | together: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in r["together"].items()), flush=True)
        med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
        print()
        print(f"| {a.batches} batches x {a.samples} samples, medians of {a.runs} runs | alone: samples/s | "
              "alone: hub CPU-s per million samples | with ingest and all outputs at once: samples/s |")
        print("|---|---|---|---|")
        print(f"| ingest → PostgreSQL | {med(lambda r: r['ingest'][0]):,.0f} | {med(lambda r: r['ingest'][1]):.2f} | "
              f"{med(lambda r: r['together']['ingest']):,.0f} |")
        for k, label in LABELS.items():
            print(f"| {label} | {med(lambda r: r[k][0]):,.0f} | {med(lambda r: r[k][1]):.2f} | "
                  f"{med(lambda r: r['together'][k]):,.0f} |")
        print(f"| hub CPU-s per million stream samples, ingest + 4 outputs at once | | | "
              f"{med(lambda r: r['together_cpu']):.2f} |")
    finally:
        for x in servers.values():
            x.cleanup()
        srv.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
