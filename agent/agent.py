"""The agent: presence, the watched view, the lease decisions, and one slot per held device.

Every agent computes, from the same KV state, the same target owner for every device (weighted
rendezvous over live, eligible agents with room: ``shared/rendezvous.plan``) and acts only for itself:

- free or orphaned device: the target claims at once, the agent ranked k places after it waits k × stagger
  (it only covers for a target that is not acting);
- held by me and I may no longer hold it (drain, pin elsewhere, tags, removed): stop the slot, then release;
- held by me but the target is another agent alive for ``settle_s``: hand over (rate-limited);
- my slot but the lease no longer names me at that revision: stop the slot at once;
- presence not renewed in time: stop every slot (self-fencing) and come back under a new incarnation.

docs/LEASES.md describes the protocol and why each rule is safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from swtel.shared import naming, rendezvous, wire
from swtel.shared.errors import UserError
from swtel.shared.natsconn import connect
from swtel.shared.settings import Settings

from .claims import Claims
from .presence import Presence
from .slots import SlotFactory, Slots
from .view import LeaseEntry, View, Watcher

log = logging.getLogger("swtel.agent")

StatsProvider = Callable[[], dict[str, dict[str, Any]]]
LEAVE_TIDY_AFTER_S = 1.5
LEAVE_TIDY_S = 5.0
MAX_CONCURRENT_OPS = 64  # enough to claim thousands per second; more only queues at the server
CLAIMS_PER_S = 1000.0  # a conservative claim rate of one busy agent (backups wait for the target's backlog)


class Agent:
    def __init__(self, settings: Settings, slot_factory: SlotFactory | None = None,
                 stats_provider: StatsProvider | None = None) -> None:
        self.settings = settings
        self.id = naming.check_name(settings.resolved_agent_id, "agent id")
        self.slots = Slots(slot_factory)
        self.stats_provider = stats_provider
        self.view = View()
        self.fenced = True  # until the first presence write succeeds
        self.leaving = False
        self.nc: NATS | None = None
        self.presence: Presence | None = None
        self.claims: Claims | None = None
        self.watchers: list[Watcher] = []
        self.plan: dict[str, str | None] = {}
        self._plan_agents: tuple = ()
        self._specs: dict[str, rendezvous.DeviceSpec] = {}
        self._slot_rev: dict[str, int] = {}  # device revision each slot was started with
        self._dirty: set[str] = set()
        self._all_dirty = True
        self._replan = True
        self._wake = asyncio.Event()
        self._renewed = asyncio.Event()
        self.kv_agents: Any = None
        self._stop = asyncio.Event()
        self._busy: set[str] = set()
        self._ops: set[asyncio.Task[None]] = set()
        self._sem = asyncio.Semaphore(MAX_CONCURRENT_OPS)
        self._claim_after: dict[str, float] = {}
        self._handed_over: dict[str, float] = {}  # device → until when we do not back its target up
        self._backlog: Counter[str | None] = Counter()
        self._dead: set[tuple[str, str]] = set()  # (agent, incarnation) confirmed gone by a direct read
        self._tokens = settings.handover_per_s
        self._tokens_at = time.monotonic()
        self._watch_restarted = 0.0
        self._fencing = False
        self._ticks = 0
        self._time_pending = True
        self._timer: asyncio.TimerHandle | None = None
        self.markers = False
        self._claim_from = 0.0  # monotonic; no claims before the first heartbeat period has passed
        self._incarnations: dict[str, str] = {}
        self.counters = {"lost_races": 0, "tidied": 0, "claims": 0, "takeovers": 0, "releases": 0, "handovers": 0, "lost": 0, "fenced": 0,
                         "op_errors": 0}

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask ``run()`` to leave gracefully (what SIGTERM/SIGINT do)."""
        self._stop.set()

    async def close(self) -> None:
        self.request_stop()

    async def run(self) -> None:
        s = self.settings
        self.nc = await connect(s, name=f"swtel-agent:{self.id}", long_running=True,
                                reconnected_cb=self._on_reconnected, disconnected_cb=self._on_disconnected)
        try:
            js = self.nc.jetstream(timeout=2)
            try:
                kv_devices, kv_agents, kv_leases = [
                    await js.key_value(b)
                    for b in (naming.BUCKET_DEVICES, naming.BUCKET_AGENTS, naming.BUCKET_LEASES)
                ]
            except Exception:
                raise UserError("the switch-telemetry buckets do not exist on this NATS server: "
                                "run `swtel nats init`") from None
            self.kv_agents = kv_agents
            self.presence = Presence(s, self.id, devices=lambda: len(self.slots))
            self.presence.on_renewed = self._on_renewed
            await self._check_agents_bucket(kv_agents)
            await self.presence.start()
            self.claims = Claims(js, kv_leases, self.id)
            v = self.view
            self.watchers = [
                Watcher("devices", kv_devices, lambda: v.devices, self._swap("devices"), v.apply_device,
                        self._devices_changed, v),
                Watcher("agents", kv_agents, lambda: v.agents, self._swap("agents"), v.apply_agent,
                        self._agents_changed, v),
                Watcher("leases", kv_leases, lambda: v.leases, self._swap("leases"), v.apply_lease,
                        self._leases_changed, v),
            ]
            subs = [await self.nc.subscribe(naming.ctl_subject(self.id, verb), cb=self._on_ctl)
                    for verb in ("status", "drain", "undrain")]
            log.info("agent starting id=%s incarnation=%s capacity=%d tags=%s", self.id,
                     self.presence.incarnation, s.agent_capacity, s.agent_tags)
            try:
                async with asyncio.TaskGroup() as tg:
                    background = [tg.create_task(c) for c in (
                        self._fence_loop(), self._tick_loop(),
                        *(w.run() for w in self.watchers))]
                    reconcile = tg.create_task(self._reconcile_loop())
                    await self._stop.wait()
                    reconcile.cancel()
                    await self._leave()
                    for t in background:
                        t.cancel()
            finally:
                for t in list(self._ops):
                    t.cancel()
                await self.slots.stop_all("shutdown")
                await self.presence.stop()
                for sub in subs:
                    try:
                        await sub.unsubscribe()
                    except Exception:
                        pass
        finally:
            try:
                await asyncio.wait_for(self.nc.close(), 5)
            except Exception:
                pass
            log.info("agent stopped id=%s", self.id)

    async def _check_agents_bucket(self, kv: Any) -> None:
        """The server expires presence after the bucket's max age; fencing must happen before that."""
        assert self.presence is not None
        status = await kv.status()
        bucket_ttl = status.ttl or 0.0
        if bucket_ttl and abs(bucket_ttl - self.settings.presence_ttl_s) > 1e-3:
            log.warning("presence_ttl_s is %.3gs but the agents bucket expires entries after %.3gs; using %.3gs",
                        self.settings.presence_ttl_s, bucket_ttl, min(bucket_ttl, self.settings.presence_ttl_s))
            self.presence.ttl = min(bucket_ttl, self.settings.presence_ttl_s)
        if not bucket_ttl:
            log.warning("the agents bucket has no max age: a dead agent's presence never expires")
        self.markers = bool(status.marker_ttl)
        if not self.markers:
            log.warning("the server does not signal expiry (no KV limit markers): dead agents are noticed "
                        "by their silence, a little later")

    async def _leave(self) -> None:
        """Graceful stop: stop every slot, then delete our presence in one write.

        With the slots stopped first, the presence delete turns all our leases into orphans that the next
        agents take over at once by compare-and-set, as after a crash but without waiting for the TTL.
        Releasing each lease here would cost a delete here and a create there per device: at 2,000 devices
        an agent that took over 2 s; this takes one write plus the takeovers, spread over the others.
        """
        assert self.presence is not None
        self.leaving = True
        log.info("agent leaving id=%s devices=%d", self.id, len(self.slots))
        if self._ops:
            await asyncio.wait(list(self._ops), timeout=3)
        held = {name: self.slots.token(name) for name in self.slots.active}
        await self.slots.stop_all("shutdown")
        await self.presence.remove()
        # Then tidy up: delete the claims nobody took over (a compare-and-delete, so a claim another agent
        # took is left alone), so no lease names a stopped agent when nobody else can take it. After a
        # grace period: deleting while the others take over would make them lose races and claim twice.
        await asyncio.sleep(LEAVE_TIDY_AFTER_S)
        assert self.claims is not None
        claims = self.claims

        async def release(name: str, token: int | None) -> None:
            async with self._sem:
                if token is not None and await claims.release(name, token):
                    await self._publish_event(name, "lease_released", f"token={token} reason=shutdown")

        try:
            await asyncio.wait_for(asyncio.gather(*(release(n, t) for n, t in held.items()),
                                                  return_exceptions=True), LEAVE_TIDY_S)
        except TimeoutError:
            log.warning("some stale claims were left; other agents take them over as orphans")
        self.counters["releases"] += len(held)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        log.warning("reconnected to NATS; re-creating watchers")
        self._restart_watchers()

    def _restart_watchers(self) -> None:
        self._watch_restarted = time.monotonic()
        for w in self.watchers:
            w.restart()

    # ---- presence and fencing ----------------------------------------------------------------------------

    def _on_renewed(self) -> None:
        """A presence write succeeded (called on this loop by the heartbeat thread)."""
        assert self.presence is not None
        self._renewed.set()
        if self.fenced and not self.leaving and not self._fencing and self.presence.valid():
            if not self._claim_from:
                # Agents started together see each other before claiming: fewer handovers after.
                self._claim_from = time.monotonic() + self.settings.heartbeat_s
                asyncio.get_running_loop().call_at(self._claim_from, self._mark_all)
            self.fenced = False
            log.info("presence valid agent=%s incarnation=%s", self.id, self.presence.incarnation)
            self._mark_all()

    async def _fence_loop(self) -> None:
        assert self.presence is not None
        p = self.presence
        while True:
            self._renewed.clear()
            remaining = p.remaining()
            if remaining > 0:
                try:
                    await asyncio.wait_for(self._renewed.wait(), remaining)
                except TimeoutError:
                    pass
                continue
            if not self.fenced:
                await self._fence()
            await self._renewed.wait()

    async def _fence(self) -> None:
        """Presence could not be renewed in time: stop everything before anyone may take our devices."""
        assert self.presence is not None
        self.fenced = True
        self._fencing = True
        self.counters["fenced"] += 1
        log.warning("fenced agent=%s incarnation=%s devices=%d: presence not renewed in time",
                    self.id, self.presence.incarnation, len(self.slots))
        # Claims of the old incarnation become orphans the moment the new one is written; we may win some
        # back by compare-and-set like anyone else, under new tokens.
        self.presence.reincarnate()
        try:
            await self.slots.stop_all("fenced")
        finally:
            self._slot_rev.clear()
            self._fencing = False

    # ---- view changes -------------------------------------------------------------------------------------

    def _swap(self, name: str) -> Callable[[dict], None]:
        def swap(fresh: dict) -> None:
            setattr(self.view, name, fresh)
        return swap

    def _devices_changed(self, keys: set[str] | None) -> None:
        specs = {n: rendezvous.DeviceSpec(n, d.pinned, d.tags) for n, (d, _) in self.view.devices.items()} \
            if keys is None else None
        if specs is not None:
            if specs != self._specs:
                self._specs = specs
                self._replan = True
            self._mark_all()
            return
        for k in keys:
            dev = self.view.devices.get(k)
            spec = rendezvous.DeviceSpec(k, dev[0].pinned, dev[0].tags) if dev else None
            if spec != self._specs.get(k):
                if spec is None:
                    self._specs.pop(k, None)
                else:
                    self._specs[k] = spec
                self._replan = True
        self._mark(keys)

    def _agents_changed(self, keys: set[str] | None) -> None:
        # Most changes are plain heartbeats: act only when the candidates or an incarnation changed
        # (a new incarnation turns every lease of the old one into an orphan).
        incarnations = {a: e.presence.incarnation for a, e in self.view.agents.items()}
        if self._candidates() != self._plan_agents:
            self._replan = True
            self._mark_all()
        elif keys is None or incarnations != self._incarnations:
            self._mark_all()
        self._incarnations = incarnations

    def _leases_changed(self, keys: set[str] | None) -> None:
        if keys is None:
            self._mark_all()
        else:
            self._mark(keys)

    def _mark(self, keys: set[str]) -> None:
        self._dirty |= keys
        self._wake.set()

    def _mark_all(self) -> None:
        self._all_dirty = True
        self._wake.set()

    # ---- who is alive ---------------------------------------------------------------------------------

    def _live(self, now: float | None = None) -> dict[str, wire.AgentPresence]:
        """Agents whose presence is current. With expiry markers the server's PURGE removes an expired
        entry from the view, and that is the only signal used: a heartbeat that is merely late (a busy
        machine) must not make every agent re-plan. Without markers (servers < 2.11) an agent not heard of
        for the TTL plus a heartbeat is treated as gone; either way a direct read confirms it before any
        takeover (``_confirm_gone``)."""
        if self.markers:
            return {a: e.presence for a, e in self.view.agents.items()}
        now = time.monotonic() if now is None else now
        limit = (self.presence.ttl if self.presence else self.settings.presence_ttl_s) + self.settings.heartbeat_s
        return {a: e.presence for a, e in self.view.agents.items() if now - e.last_seen <= limit}

    def _candidates(self) -> tuple[rendezvous.Candidate, ...]:
        """Live agents that may take devices (a draining agent takes none, so it changes no plan)."""
        out = []
        for p in self._live().values():
            draining = p.draining
            if p.id == self.id and self.presence is not None:
                draining = self.presence.draining
            if not draining:
                out.append(rendezvous.Candidate(p.id, p.capacity, dict(p.tags)))
        return tuple(sorted(out, key=lambda c: c.id))

    def _me(self) -> rendezvous.Candidate:
        s = self.settings
        return rendezvous.Candidate(self.id, s.agent_capacity, dict(s.agent_tags),
                                    self.presence.draining if self.presence else False)

    async def _confirm_gone(self, agent: str, incarnation: str) -> bool:
        if (agent, incarnation) in self._dead:
            return True
        assert self.presence is not None
        try:
            entry = await asyncio.wait_for(self.kv_agents.get(naming.encode_name(agent)), 2.0)
            alive = bool(entry.value) and wire.presence_decoder.decode(entry.value).incarnation == incarnation
        except KeyNotFoundError:
            alive = False
        if not alive:
            self._dead.add((agent, incarnation))
        return not alive

    # ---- reconcile ---------------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        """Time-based rules: settle periods, agents silent for the TTL, a stale watch pipeline."""
        hb = self.settings.heartbeat_s
        while True:
            await asyncio.sleep(hb)
            now = time.monotonic()
            if self._candidates() != self._plan_agents:
                self._replan = True
            own = self.view.agents.get(self.id)
            ttl = self.presence.ttl if self.presence else self.settings.presence_ttl_s
            # Generous: under load the watch pipeline lags, and re-creating watchers only adds work. A
            # server restart is handled by the reconnect callback; this catches a watcher gone silent.
            stale = own is None or now - own.last_seen > max(4 * ttl, 10 * hb)
            if (stale and not self.leaving and self.presence is not None and self.presence.valid()
                    and all(self.view.ready.values())
                    and now - self._watch_restarted > 2 * ttl):
                log.warning("own heartbeats not seen through the watcher; re-creating watchers")
                self._restart_watchers()
            # Events drive almost everything; the clock only matters for settle periods, the handover
            # rate limit and retries. A full pass over 10,000 devices every second is not free.
            self._ticks += 1
            if self._time_pending or not self.markers or self._ticks % 10 == 0:
                self._time_pending = False
                self._mark_all()

    async def _reconcile_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not all(self.view.ready.values()):
                continue
            if self._replan:
                self._replan = False
                cands = self._candidates()
                specs = list(self._specs.values())
                t0 = time.monotonic()
                old_cands, self._plan_agents = self._plan_agents, cands  # no re-plan requests for it meanwhile
                quick = self._plan_without(old_cands, cands)
                self.plan = quick if quick is not None else await asyncio.to_thread(rendezvous.plan, specs, cands)
                log.info("planned devices=%d agents=%s in %.3fs", len(specs), ",".join(c.id for c in cands),
                         time.monotonic() - t0)
                self._claim_after.clear()
                self._all_dirty = True
            if self._all_dirty:
                self._all_dirty = False
                self._dirty.clear()
                names = set(self.view.devices) | set(self.slots.active) | set(self._claim_after)
                names.update(n for n, e in self.view.leases.items()
                             if e.lease and (e.lease.agent == self.id or n not in self.view.devices))
            else:
                names, self._dirty = self._dirty, set()
            now = time.monotonic()
            live = self._live(now)
            self._refill(now)
            if len(names) > 64:
                self._backlog = self._count_backlog(names, live)
            next_due = None
            for name in names:
                due = self._decide(name, now, live)
                if due is not None:
                    next_due = due if next_due is None else min(next_due, due)
            if next_due is not None and (self._timer is None or next_due < self._timer.when()):
                # One timer for the earliest staggered claim (not one per pass: passes are frequent).
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = asyncio.get_running_loop().call_at(next_due, self._wake_for_due)
            await asyncio.sleep(0)

    def _plan_without(self, old: tuple[rendezvous.Candidate, ...],
                      new: tuple[rendezvous.Candidate, ...]) -> dict[str, str | None] | None:
        """The plan after agents left, re-ranking only their devices; ``None`` when a full plan is needed.

        Exact while no agent is full: then ``rendezvous.plan`` gives every device its top-ranked eligible
        agent, and removing agents changes only the devices they had. A leave is the case where speed
        matters (a graceful stop hands over as soon as everyone has re-planned)."""
        gone = {c.id for c in old} - {c.id for c in new}
        if not gone or not all(c in old for c in new) or self._specs.keys() != self.plan.keys():
            return None
        counts = Counter(self.plan.values())
        capacity = {c.id: c.capacity for c in new}
        if any(counts[a] >= cap for a, cap in capacity.items()):
            return None
        plan = dict(self.plan)
        for name, owner in self.plan.items():
            if owner in gone:
                spec = self._specs[name]
                order = rendezvous.rank(name, new, spec.pinned, spec.tags)
                plan[name] = order[0] if order else None
                if order:
                    counts[order[0]] += 1
        if any(counts[a] >= cap for a, cap in capacity.items()):
            return None  # someone is full now: the order-dependent full plan decides
        return plan

    def _count_backlog(self, names: set[str], live: dict[str, wire.AgentPresence]) -> Counter[str | None]:
        """Devices waiting for a claim, per target agent: how long a backup should give the target."""
        backlog: Counter[str | None] = Counter()
        leases = self.view.leases
        for name in names:
            e = leases.get(name)
            lease = e.lease if e else None
            if lease is None or (h := live.get(lease.agent)) is None or h.incarnation != lease.incarnation:
                backlog[self.plan.get(name)] += 1
        return backlog

    def _wake_for_due(self) -> None:
        self._timer = None
        now = time.monotonic()
        due = {d for d, t in self._claim_after.items() if t <= now}
        later = [t for t in self._claim_after.values() if t > now]
        if later:
            self._timer = asyncio.get_running_loop().call_at(min(later), self._wake_for_due)
        self._mark(due)

    def _refill(self, now: float) -> None:
        rate = self.settings.handover_per_s
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now

    def _decide(self, name: str, now: float, live: dict[str, wire.AgentPresence]) -> float | None:
        """One device's rule (see the module docstring). Returns when to look again, if it is waiting."""
        if name in self._busy or self.presence is None:
            return None
        inc = self.presence.incarnation
        entry = self.view.leases.get(name)
        lease = entry.lease if entry else None
        mine = lease is not None and lease.agent == self.id and lease.incarnation == inc
        token = self.slots.token(name)
        if token is not None and not (mine and entry is not None and entry.revision == token):
            self.counters["lost"] += 1
            self._spawn(name, self.slots.stop(name, "claim_taken"))
            return None
        if self.fenced or self.leaving or not self.presence.valid(now):
            return None
        dev = self.view.devices.get(name)
        target = self.plan.get(name)
        if mine:
            assert entry is not None
            if dev is None:
                self._spawn(name, self._release(name, "device_removed", entry.revision))
            elif not rendezvous.eligible(self._me(), dev[0].pinned, dev[0].tags):
                self._spawn(name, self._release(name, "not_eligible", entry.revision))
            elif target not in (None, self.id) and target in live:
                if not self._settled(target, now) or self._tokens < 1:
                    self._time_pending = True  # the next tick looks again (settle period, rate limit)
                else:
                    self._tokens -= 1
                    self._spawn(name, self._release(name, "handover", entry.revision))
            elif token is None:
                self._start_slot(dev[0], entry.revision, dev[1])
                self._spawn_event(name, "lease_acquired", f"token={entry.revision} adopted")
            elif self._slot_rev.get(name) != dev[1]:
                self._slot_rev[name] = dev[1]
                self._spawn(name, self.slots.restart(dev[0]))
            return None
        holder_live = lease is not None and (h := live.get(lease.agent)) is not None and h.incarnation == lease.incarnation
        if dev is None:
            self._claim_after.pop(name, None)
            if lease is not None and not holder_live and self._first_among_live(name):
                # removed while its holder was dead: nobody would ever delete the claim; one agent tidies it
                assert entry is not None
                self._spawn(name, self._tidy_removed(name, entry))
            return None
        if holder_live:
            self._claim_after.pop(name, None)
            return None
        if target is None:
            return None
        if len(self.slots) + len(self._busy) >= self.settings.agent_capacity:
            self._time_pending = True  # room may free up without an event for this device
            return None
        if now < self._claim_from:
            return None  # a full pass runs when the start-up period ends
        cooldown = self._handed_over.get(name)
        if cooldown is not None:
            if now < cooldown and target != self.id:
                self._time_pending = True
                return cooldown  # we just gave it to its target: never race the target for it
            del self._handed_over[name]
        due = self._claim_after.get(name)
        if due is None:
            if target == self.id:
                due = now
            else:
                order = rendezvous.rank(name, self._plan_agents, dev[0].pinned, dev[0].tags)
                if self.id not in order or target not in order:
                    return None
                k = order.index(self.id) - order.index(target)
                if k <= 0:
                    return None  # ranked before the target but full: not ours to cover
                # A backup steps in only if the target is not acting: give it k staggers plus the time
                # its backlog of claims takes (at cold start or failover a target has hundreds to write).
                due = now + k * self.settings.claim_stagger_s + self._backlog.get(target, 0) / CLAIMS_PER_S
            self._claim_after[name] = due
        if now < due:
            return due
        self._claim_after.pop(name, None)
        self._spawn(name, self._claim(name, entry))
        return None

    def _settled(self, agent: str, now: float) -> bool:
        e = self.view.agents.get(agent)
        return e is not None and now - e.first_seen >= self.settings.settle_s

    def _spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        self._busy.add(name)

        async def op() -> None:
            try:
                async with self._sem:
                    await coro
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Often a timeout under load (the write may even have landed: the watcher will tell).
                # Retry later, not at once: hammering an overloaded server makes it slower for everyone.
                self.counters["op_errors"] += 1
                self._claim_after[name] = time.monotonic() + 1.0
                log.warning("lease operation failed device=%s: %r", name, e)
            finally:
                self._busy.discard(name)
                self._mark({name})

        task = asyncio.create_task(op())
        self._ops.add(task)
        task.add_done_callback(self._ops.discard)

    # ---- operations ----------------------------------------------------------------------------------

    async def _claim(self, name: str, entry: LeaseEntry | None) -> None:
        assert self.claims is not None and self.presence is not None
        inc = self.presence.incarnation
        if entry is None:
            rev = await self.claims.create(name, inc)
        elif entry.lease is None:
            rev = await self.claims.take_over(name, inc, entry.revision)
        else:
            if not await self._confirm_gone(entry.lease.agent, entry.lease.incarnation):
                self._claim_after[name] = time.monotonic() + max(0.5, self.settings.claim_stagger_s)
                return
            rev = await self.claims.take_over(name, inc, entry.revision)
            if rev is not None:
                self.counters["takeovers"] += 1
        if rev is None:
            # Lost the race, or our view is behind: look again once the view has caught up, not at once.
            self.counters["lost_races"] += 1
            self._claim_after[name] = time.monotonic() + max(0.5, self.settings.claim_stagger_s)
            return
        self.counters["claims"] += 1
        current = self.view.leases.get(name)
        if current is None or current.revision < rev:
            self.view.leases[name] = LeaseEntry(wire.Lease(name, self.id, inc), rev)
        dev = self.view.devices.get(name)
        # Fencing: act on the claim only if this incarnation is still valid now; otherwise the claim is an
        # orphan that someone (maybe us, under the new incarnation) takes over.
        if (dev is None or self.fenced or self.leaving or self.presence.incarnation != inc
                or not self.presence.valid() or name in self.slots):
            return
        self._start_slot(dev[0], rev, dev[1])
        await self._publish_event(name, "lease_acquired", f"token={rev} claimed")

    def _first_among_live(self, name: str) -> bool:
        order = rendezvous.rank(name, self._plan_agents)
        return bool(order) and order[0] == self.id

    async def _tidy_removed(self, name: str, entry: LeaseEntry) -> None:
        """Compare-and-delete the claim of a removed device whose holder is gone (a no-op if it moved)."""
        assert self.claims is not None and entry.lease is not None
        if await self._confirm_gone(entry.lease.agent, entry.lease.incarnation) and \
                await self.claims.release(name, entry.revision):
            self.counters["tidied"] += 1
            log.info("deleted the claim of removed device %s (holder %s gone)", name, entry.lease.agent)

    def _start_slot(self, device: wire.Device, token: int, dev_rev: int) -> None:
        self._slot_rev[device.name] = dev_rev
        self.slots.start(device, token)

    async def _release(self, name: str, reason: str, token: int | None = None) -> None:
        """Stop the slot first (bounded wait), then compare-and-delete the claim."""
        assert self.claims is not None
        token = self.slots.token(name) if token is None else token
        await self.slots.stop(name, reason)
        self._slot_rev.pop(name, None)
        if token is None:
            return
        released = await self.claims.release(name, token)
        self.counters["handovers" if reason == "handover" else "releases"] += 1
        if reason == "handover":
            self._handed_over[name] = time.monotonic() + max(self.settings.settle_s, 1.0)
        if released:
            await self._publish_event(name, "lease_released", f"token={token} reason={reason}")

    def _spawn_event(self, device: str, kind: str, detail: str) -> None:
        task = asyncio.get_running_loop().create_task(self._publish_event(device, kind, detail))
        self._ops.add(task)
        task.add_done_callback(self._ops.discard)

    async def _publish_event(self, device: str, kind: str, detail: str) -> None:
        """Core publish (the SWTEL_EVENTS stream captures it); an event lost in a disconnect is only logged."""
        if self.nc is None:
            return
        ev = wire.Event(device=device, agent=self.id, kind=kind, ts=time.time_ns(), detail=detail)
        try:
            await self.nc.publish(naming.event_subject(device, kind), wire.encode(ev))
        except Exception as e:
            log.debug("event publish failed: %r", e)

    # ---- control requests --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        p = self.presence
        stats = {}
        if self.stats_provider is not None:
            try:
                stats = self.stats_provider() or {}
            except Exception as e:
                log.warning("stats provider failed: %r", e)
        devices = {name: {"token": slot.token, **stats.get(name, {})} for name, slot in self.slots.active.items()}
        return {
            "id": self.id,
            "incarnation": p.incarnation if p else None,
            "healthy": self.healthy(),
            "fenced": self.fenced,
            "draining": bool(p and p.draining),
            "presence_valid_for_s": round(p.remaining(), 3) if p else 0.0,
            "watchers_ready": dict(self.view.ready),
            "live_agents": sorted(self._live()),
            "counters": dict(self.counters, slot_failures=self.slots.failures,
                             malformed=self.view.malformed, lease_writes=self.claims.ops if self.claims else 0,
                             presence_writes=p.writes if p else 0),
            "devices": devices,
        }

    def healthy(self) -> bool:
        p = self.presence
        return bool(p and not self.fenced and p.valid() and all(self.view.ready.values()))

    async def _on_ctl(self, msg: Msg) -> None:
        verb = msg.subject.rsplit(".", 1)[-1]
        try:
            if verb in ("drain", "undrain") and self.presence is not None:
                self.presence.draining = verb == "drain"
                log.info("%s requested agent=%s", verb, self.id)
                await self.presence.beat_now()
                self._replan = True
                self._mark_all()
            if msg.reply:
                await msg.respond(msgspec.json.encode(self.status()))
        except Exception as e:
            log.warning("control request %s failed: %r", verb, e)
