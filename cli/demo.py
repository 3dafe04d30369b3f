"""``swtel demo``: the whole system on one machine, from one command.

Starts an embedded NATS (the wheel's server) and a database (``$SWTEL_DATABASE_URL``, else an embedded
PostgreSQL), creates buckets and schema, then runs the simulator with fifty devices, the hub and two
agents as child processes (``swtel sim run``, ``swtel hub run``, ``swtel agent run``: the same commands a
deployment uses). It shows progress while starting, then a live summary. Ctrl-C stops the agents first
(so they release their leases), then the hub, the simulator and the servers; nothing is left running.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from swtel.shared import buckets, naming
from swtel.shared import settings as settings_mod
from swtel.shared.errors import SwtelError
from swtel.shared.inventory import Inventory, snapshot
from swtel.shared.natsconn import connect

from .embedded import EmbeddedNats, EmbeddedPostgres, free_port, free_port_range, wait_listening

console = Console(stderr=True, highlight=False)
GRACE_S = 10.0


def _die_with_parent() -> None:
    """Children get SIGTERM if the demo itself is killed (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    args: list[str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self, env: dict[str, str]) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "swtel.cli", *self.args,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            start_new_session=True,  # Ctrl-C reaches only the demo, which stops children in order
            preexec_fn=_die_with_parent,
        )
        log.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), GRACE_S)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class Traffic:
    """Counts telemetry seen on ``swtel.telemetry.>`` for the summary."""

    last_seen: dict[str, float] = field(default_factory=dict)
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=600))
    malformed: int = 0

    def seen(self, device: str, n: int) -> None:
        now = time.monotonic()
        self.last_seen[device] = now
        self.samples.append((now, n))

    def devices_recent(self, window: float = 30.0) -> int:
        now = time.monotonic()
        return sum(1 for t in self.last_seen.values() if now - t < window)

    def rate(self, window: float = 10.0) -> float:
        now = time.monotonic()
        return sum(n for t, n in self.samples if now - t < window) / window


@dataclass(frozen=True)
class FaultyGroup:
    """Extra simulated devices that misbehave, each group one ``swtel sim run`` with its own name prefix."""

    prefix: str
    count: int
    protocol: str
    faults: tuple[str, ...]
    shows: str  # what an operator sees for them

    def names(self) -> list[str]:
        return [f"{self.prefix}-{i:04d}" for i in range(self.count)]  # as `swtel sim run` names them

    def sim_args(self, base_port: int) -> list[str]:
        args = ["sim", "run", "--devices", str(self.count), "--protocol", self.protocol, "--name-prefix", self.prefix,
                "--base-port", str(base_port), "--register", "--interfaces", "8"]
        for f in self.faults:
            args += ["--fault", f]
        return args


# ``swtel demo --faults``: every state the dashboard can show, within a few minutes of starting.
FAULTY = (
    FaultyGroup("badpw", 2, "ssh", ("wrong-password",), "auth failed, then down"),
    FaultyGroup("hung", 1, "netconf", ("hang",), "timeouts, then down"),
    FaultyGroup("flappy", 1, "gnmi", ("drop=20s",), "its gNMI stream ends every 20s: session down and up again"),
)
CONFIG_CHANGE_EVERY = "3m"  # the main simulator edits every running config this often (config diff view)
CONFIG_BACKUP_EVERY_S = 60  # and agents fetch SSH/NETCONF configs this often, so a change shows within minutes


class Demo:
    def __init__(self, data_dir: Path, *, devices: int = 50, agents: int = 2, hub_port: int = 8080,
                 protocol: str = "mixed", database_url: str | None = None, faults: bool = False,
                 config_change_every: str = CONFIG_CHANGE_EVERY) -> None:
        self.data_dir = data_dir
        self.faults = faults
        self.config_change_every = config_change_every
        self.devices = devices
        self.agents = agents
        self.hub_port = hub_port
        self.protocol = protocol
        self.database_url = database_url
        self.nats = EmbeddedNats(data_dir)
        self.nc = None
        self.password = ""
        self.postgres: EmbeddedPostgres | None = None
        self.children: list[Child] = []
        self.traffic = Traffic()
        self.stopping = asyncio.Event()
        self.logs = data_dir / "logs"
        self.total = devices  # with --faults, the faulty devices too

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            await self._start()
            await self._summary_until_stopped()
        finally:
            await self.close()

    async def close(self) -> None:
        console.print("stopping: agents first, so they release their devices …")
        agents = [c for c in self.children if c.name.startswith("agent")]
        others = [c for c in reversed(self.children) if c not in agents]
        await asyncio.gather(*(c.stop() for c in agents))
        for child in others:
            await child.stop()
        if self.nc is not None:
            await self.nc.close()
        await asyncio.to_thread(self.nats.stop)
        if self.postgres:
            await asyncio.to_thread(self.postgres.stop)
        (self.data_dir / "demo.pids").unlink(missing_ok=True)
        console.print("stopped; nothing left running.")

    # ---- start-up -------------------------------------------------------------------------------------

    def _step(self, text: str) -> None:
        console.print(f"[green]✓[/green] {text}")

    async def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        console.print(f"switch-telemetry demo in {self.data_dir} (logs in {self.logs})")
        await asyncio.to_thread(self.nats.start)
        self._step(f"NATS with JetStream at {self.nats.url}")
        if not self.database_url:
            self.postgres = EmbeddedPostgres(self.data_dir)
            self.database_url = await asyncio.to_thread(self.postgres.start)
            self._step("embedded PostgreSQL started")
        else:
            self._step("database from SWTEL_DATABASE_URL")
        s = settings_mod.load({"nats_url": self.nats.url}, env={})
        self.nc = await connect(s, name="swtel-demo", long_running=True)
        await buckets.ensure(self.nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
        self.inventory = await Inventory.open(self.nc.jetstream())
        await self.nc.subscribe(naming.TELEMETRY_ALL, cb=self._on_telemetry)
        self._step("buckets and streams ready")

        env = {
            **os.environ,
            "SWTEL_NATS_URL": self.nats.url,
            "SWTEL_DATABASE_URL": self.database_url,
            # the simulator registers its devices with credential reference "sim" (admin/admin)
            "SWTEL_CRED_SIM_USERNAME": "admin",
            "SWTEL_CRED_SIM_PASSWORD": "admin",
            # the simulator makes new SSH host keys every start: trust them on first use, in the demo only
            "SWTEL_SSH_HOST_KEY_POLICY": "accept-new",
            "SWTEL_SSH_KNOWN_HOSTS": str(self.data_dir / "known_hosts"),
        }
        if self.faults:
            env.setdefault("SWTEL_CONFIG_BACKUP_INTERVAL_S", str(CONFIG_BACKUP_EVERY_S))
        await self._run_once("db-migrate", ["db", "migrate"], env)
        self._step("database schema migrated")
        await self._create_user()

        base = free_port_range(self.devices)
        sim = ["sim", "run", "--devices", str(self.devices), "--protocol", self.protocol, "--base-port", str(base),
               "--register"]
        if self.faults:
            sim += ["--config-change-every", self.config_change_every]
        await self._spawn("sim", sim, env)
        total, next_port = self.devices, base + self.devices  # the simulators bind later: ranges must not overlap
        for group in FAULTY if self.faults else ():
            port = free_port_range(group.count, start=next_port)
            await self._spawn(f"sim-{group.prefix}", group.sim_args(port), env)
            total, next_port = total + group.count, port + group.count
        self.total = total
        await self._wait(lambda: self._count_devices(), total, "simulated devices registered", 60)

        self.hub_port = free_port(self.hub_port)
        await self._spawn("hub", ["hub", "run", "--host", "127.0.0.1", "--port", str(self.hub_port)], env)
        await asyncio.to_thread(wait_listening, self.hub_port, 60, "the hub")
        self._step(f"hub listening on http://127.0.0.1:{self.hub_port}/")

        for i in range(1, self.agents + 1):
            await self._spawn(f"agent-{i}", ["agent", "run", "--id", f"demo-agent-{i}"], env)
        await self._wait(lambda: self._count_agents(), self.agents, "agents live", 60)
        await self._wait(lambda: self._count_collecting(), self.devices, "devices sending telemetry", 120)
        (self.data_dir / "demo.pids").write_text(
            "\n".join(str(c.proc.pid) for c in self.children if c.proc) + "\n"
        )
        if self.faults:
            self._print_faults()
        console.print(f"\n[bold]Dashboard: http://127.0.0.1:{self.hub_port}/[/bold]   user [bold]demo[/bold], "
                      f"password [bold]{self.password}[/bold]   (Ctrl-C stops everything)\n")

    def _print_faults(self) -> None:
        console.print("\nFaulty devices (--faults):")
        for g in FAULTY:
            names = ", ".join(g.names())
            console.print(f"  {names} ({g.protocol}, {' '.join(g.faults)}): {g.shows}")
        backup = os.environ.get("SWTEL_CONFIG_BACKUP_INTERVAL_S", str(CONFIG_BACKUP_EVERY_S))
        console.print(f"  every simulated switch's running config changes every {self.config_change_every}; agents "
                      f"back up SSH/NETCONF configs every {backup}s: see Config in the dashboard or "
                      "`swtel config diff DEVICE`")

    async def _create_user(self) -> None:
        """An admin for this demo only, with a fresh random password (the hub has no default password)."""
        import secrets

        import asyncpg

        from swtel.hub.auth import store
        from swtel.hub.auth.passwords import hash_password_sync

        self.password = secrets.token_urlsafe(12)
        conn = await asyncpg.connect(self.database_url)
        try:
            await store.add_user(conn, "demo", "admin", await asyncio.to_thread(hash_password_sync, self.password))
        finally:
            await conn.close()
        self._step("demo admin user created")

    async def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        child = Child(name, args, self.logs / f"{name}.log")
        await child.start(env)
        self.children.append(child)
        return child

    async def _run_once(self, name: str, args: list[str], env: dict[str, str]) -> None:
        child = Child(name, args, self.logs / f"{name}.log")
        await child.start(env)
        assert child.proc is not None
        if await child.proc.wait() != 0:
            raise SwtelError(f"`swtel {' '.join(args)}` failed:\n{child.log_tail()}")

    def _check_children(self) -> None:
        for child in self.children:
            if not child.alive:
                raise SwtelError(f"{child.name} exited unexpectedly (code {child.proc.returncode if child.proc else '?'}):\n"
                                 f"{child.log_tail()}")

    async def _wait(self, probe, target: int, what: str, timeout: float) -> None:  # noqa: ANN001
        """Show progress of ``probe()`` towards ``target``; fail clearly after ``timeout`` seconds."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        deadline = time.monotonic() + timeout
        with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
                      transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task(what, total=target)
            while True:
                self._check_children()
                n = await probe()
                progress.update(task, completed=n)
                if n >= target:
                    break
                if self.stopping.is_set():
                    raise SwtelError("interrupted while starting")
                if time.monotonic() > deadline:
                    raise SwtelError(f"only {n} of {target} {what} after {timeout:g}s; see the logs in {self.logs}")
                await asyncio.sleep(0.25)
        self._step(f"{target} {what}")

    async def _count_devices(self) -> int:
        return len(await snapshot(self.inventory.devices))

    async def _count_agents(self) -> int:
        return len(await self.inventory.agent_list())

    async def _count_collecting(self) -> int:
        return self.traffic.devices_recent()

    async def _on_telemetry(self, msg) -> None:  # noqa: ANN001
        from swtel.shared import wire

        try:
            batch = wire.batch_decoder.decode(msg.data)
        except Exception:  # noqa: BLE001 (counted, never fatal)
            self.traffic.malformed += 1
            return
        self.traffic.seen(batch.device, wire.count(batch))

    # ---- running --------------------------------------------------------------------------------------

    async def _summary_until_stopped(self) -> None:
        interval = 2.0 if console.is_terminal else 10.0
        while not self.stopping.is_set():
            try:
                await asyncio.wait_for(self.stopping.wait(), interval)
                break
            except TimeoutError:
                pass
            self._check_children()
            agents = await self.inventory.agent_list()
            leases = await self.inventory.lease_list()
            console.print(
                f"{time.strftime('%H:%M:%S')}  agents {len(agents)}  leases {len(leases)}/{self.total}  "
                f"collecting {self.traffic.devices_recent()}/{self.total}  "
                f"{self.traffic.rate():,.0f} samples/s"
            )
