"""Real ``swtel agent run`` processes for lease tests and benchmarks, and what their logs say.

Each agent's stderr goes to a log file. Slot transitions are structured lines with a wall-clock ``ts``
(``slot started device=… token=… ts=…`` / ``slot stopped device=… token=… reason=… ts=…``), so the
intervals during which each agent had a slot for a device can be rebuilt and checked for overlap even
while NATS itself is paused.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SLOT_RE = re.compile(r"slot (started|stopped) device=(\S+) token=(\d+)(?: reason=(\S+))? ts=([\d.]+)")

# Short timings keep the suite fast; the benchmark uses the defaults.
FAST_ENV = {
    "SWTEL_HEARTBEAT_S": "0.25",
    "SWTEL_PRESENCE_TTL_S": "1.0",
    "SWTEL_FENCE_MARGIN_S": "0.25",
    "SWTEL_CLAIM_STAGGER_S": "0.1",
    "SWTEL_SETTLE_S": "1.0",
}


def swtel_binary() -> str:
    return str(Path(sys.executable).parent / "swtel")


@dataclass
class AgentProc:
    agent_id: str
    nats_url: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swtel-agent-")))
    collect: bool = False  # lease tests hold devices with idle slots; end-to-end tests collect for real
    proc: subprocess.Popen[bytes] | None = None
    killed_at: float | None = None
    kills: list[float] = field(default_factory=list)
    runs: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.agent_id}.log"

    def start(self) -> AgentProc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [swtel_binary(), "agent", "run", "--id", self.agent_id, "--nats", self.nats_url,
             "--collect" if self.collect else "--no-collect", *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()
        self.killed_at = None
        self.runs += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no goodbye, its leases become orphans when its presence expires."""
        if self.alive:
            assert self.proc is not None
            self.killed_at = time.time()
            self.kills.append(self.killed_at)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = 15.0) -> int:
        if not self.alive:
            return self.proc.returncode if self.proc else 0
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"agent {self.agent_id} did not stop within {timeout}s:\n{self.tail()}") from None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Pending:
    """A falsy probe result that still says what was seen (for ``eventually``'s failure message)."""

    def __init__(self, info: str) -> None:
        self.info = info

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return self.info


@dataclass
class Interval:
    agent: str
    device: str
    token: int
    start: float
    end: float | None  # None: still active
    reason: str | None = None


def slot_intervals(agents: list[AgentProc]) -> list[Interval]:
    """Every slot each agent ever had, from its log. A slot of a killed process ends at the kill."""
    out: list[Interval] = []
    for a in agents:
        try:
            text = a.log_path.read_text(errors="replace")
        except OSError:
            continue
        open_: dict[str, Interval] = {}
        # A restarted process appends to the same log; a process start closes what a kill left open.
        for line in text.splitlines():
            if " agent starting " in line:
                for iv in open_.values():
                    iv.end, iv.reason = _kill_after(a, iv.start) or iv.start, "killed"
                open_.clear()
                continue
            m = SLOT_RE.search(line)
            if not m:
                continue
            what, device, token, reason, ts = m.groups()
            if what == "started":
                iv = Interval(a.agent_id, device, int(token), float(ts), None)
                open_[device] = iv
                out.append(iv)
            elif device in open_:
                iv = open_.pop(device)
                iv.end, iv.reason = float(ts), reason
        for iv in open_.values():
            # Killed after it started (maybe restarted since, before the new process logged anything).
            kill = _kill_after(a, iv.start)
            if kill is not None or not a.alive:
                iv.end, iv.reason = kill or time.time(), "killed"
    return out


def _kill_after(a: AgentProc, t: float) -> float | None:
    return min((k for k in a.kills if k >= t), default=None)


def active_slots(agents: list[AgentProc]) -> dict[str, list[str]]:
    """Device → agents with an active slot now (by the logs)."""
    out: dict[str, list[str]] = defaultdict(list)
    for iv in slot_intervals(agents):
        if iv.end is None:
            out[iv.device].append(iv.agent)
    return dict(out)


def overlaps(agents: list[AgentProc]) -> list[tuple[Interval, Interval]]:
    """Pairs of slots of one device on two agents whose lifetimes overlapped (must always be empty)."""
    by_dev: dict[str, list[Interval]] = defaultdict(list)
    for iv in slot_intervals(agents):
        by_dev[iv.device].append(iv)
    bad = []
    now = time.time()
    for ivs in by_dev.values():
        ivs.sort(key=lambda i: i.start)
        for i, a in enumerate(ivs):
            for b in ivs[i + 1:]:
                if b.start >= (a.end if a.end is not None else now):
                    break
                if a.agent != b.agent:
                    bad.append((a, b))
    return bad


# ---- a fleet: one nats-server, the buckets, agents and the inventory ------------------------------------

FAST_TTL_S = float(FAST_ENV["SWTEL_PRESENCE_TTL_S"])


class Fleet:
    """A nats-server with the buckets (presence TTL as the agents use), agent processes, and helpers."""

    def __init__(self, server, *, ttl: float = FAST_TTL_S, markers: bool = True, env: dict[str, str] | None = None):
        self.server = server
        self.ttl = ttl
        self.markers = markers
        self.env = dict(FAST_ENV, **(env or {}))
        self.agents: dict[str, AgentProc] = {}
        self.nc = None
        self.inv = None

    @property
    def url(self) -> str:
        return self.server.url

    async def open(self, replicas: int = 1) -> Fleet:
        from swtel.shared import buckets, settings
        from swtel.shared.inventory import Inventory
        from swtel.shared.natsconn import connect

        s = settings.load({"nats_url": self.url, "presence_ttl_s": self.ttl}, env={})
        self.nc = await connect(s, name="test-fleet", long_running=True)
        js = self.nc.jetstream(timeout=5)
        await buckets.ensure(js, buckets.specs(s, replicas=replicas, markers=self.markers))
        self.inv = await Inventory.open(js)
        return self

    async def close(self) -> None:
        for a in self.agents.values():
            a.kill()
            shutil.rmtree(a.log_dir, ignore_errors=True)
        if self.nc is not None:
            await self.nc.close()

    async def add_devices(self, n: int, prefix: str = "dev", **kw) -> list[str]:
        from swtel.shared.inventory import make_device

        devs = [make_device(f"{prefix}-{i:04d}", "127.0.0.1", "gnmi", **kw) for i in range(n)]
        await self.inv.add_many(devs)
        return [d.name for d in devs]

    def start(self, agent_id: str, *args: str, url: str | None = None, **env: str) -> AgentProc:
        """Start (or restart) an agent; ``url`` lets it reach NATS another way (through a proxy)."""
        a = self.agents.get(agent_id)
        if a is None:
            a = self.agents[agent_id] = AgentProc(agent_id, url or self.url, list(args), dict(self.env, **env))
        else:
            a.args = list(args) or a.args
        return a.start()

    @property
    def procs(self) -> list[AgentProc]:
        return list(self.agents.values())

    def active(self) -> dict[str, list[str]]:
        return active_slots(self.procs)

    def expected(self, devices: list[str], agents: dict[str, dict] | list[str]) -> dict[str, str | None]:
        """The rendezvous plan for these devices over these agents (id → capacity/tags/pinned overrides)."""
        from swtel.shared.rendezvous import Candidate, DeviceSpec, plan

        if isinstance(agents, list):
            agents = {a: {} for a in agents}
        cands = [Candidate(a, **kw) for a, kw in agents.items()]
        return plan([DeviceSpec(d) for d in devices], cands)

    async def converge(self, want: dict[str, str | None], timeout: float, what: str) -> float:
        """Wait until every device's active slots are exactly [its planned agent]; returns seconds taken."""
        from .waits import eventually

        t0 = time.monotonic()

        async def ok():
            act = self.active()
            wrong = {d: act.get(d, []) for d, a in want.items() if act.get(d, []) != ([a] if a else [])}
            return True if not wrong else Pending(f"{len(wrong)} device(s) not as planned, e.g. "
                                                  f"{dict(list(wrong.items())[:3])}")

        await eventually(ok, timeout=timeout, what=what)
        return time.monotonic() - t0

    def assert_no_overlap(self) -> None:
        bad = overlaps(self.procs)
        assert not bad, f"{len(bad)} device(s) had two active slots at once, e.g. {bad[:2]}"


@dataclass
class Cli:
    code: int
    out: str
    err: str


async def swtel_cli(url: str, *args: str, env: dict[str, str] | None = None) -> Cli:
    """Run the installed ``swtel`` as a subprocess (async tests cannot use the in-process runner)."""
    import asyncio

    full = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
    full.update(env or {}, COLUMNS="200")
    proc = await asyncio.create_subprocess_exec(swtel_binary(), "--nats", url, *args, env=full,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return Cli(proc.returncode or 0, out.decode(), err.decode())
