"""Every hub's view of the outputs: reads ``swtel_outputs``, runs what this hub should run, reports state.

Push outputs (remote_write, influx) run on the hub that holds fleet work (``is_active``); the others show
them as ``standby`` with the consumer's lag, which any hub can read. Scrape outputs run on every hub.
A changed definition restarts its runner; a paused or removed one stops (a paused output keeps its
consumer, so it resumes where it stopped; ``swtel output remove`` deletes the consumer too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import BucketNotFoundError, NotFoundError

from swtel.agent.credentials import Credentials
from swtel.shared import naming
from swtel.shared.errors import NotFound
from swtel.shared.inventory import Inventory
from swtel.shared.settings import Settings

from .model import BUCKET, OutputDef, OutputStore, encoder
from ..fencing import LeaseLedger
from .runner import Fencing, OutputState, PushRunner, Runner, ScrapeRunner

log = logging.getLogger("swtel.hub.outputs")
POLL_S = 1.0
STATS_EVERY_S = 2.0
TAGS_EVERY_S = 30.0
STOP_GRACE_S = 5.0


class OutputManager:
    def __init__(self, nc: NATS, settings: Settings, *, ledger: LeaseLedger,
                 is_active: Callable[[], bool] = lambda: True, inventory: Callable[[], Any] | None = None) -> None:
        self.nc = nc
        self.settings = settings
        # the same verdicts as ingest: an output gets exactly the batches and samples storage keeps
        self.fencing = Fencing(ledger, settings.fence_grace_s)
        self.is_active = is_active
        self.inventory = inventory  # async () → Inventory, for device tags as labels
        self.creds = Credentials(settings.secrets_file)
        self.defs: dict[str, OutputDef] = {}
        self.states: dict[str, OutputState] = {}
        self.runners: dict[str, tuple[bytes, Runner, asyncio.Task[None]]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.ready = asyncio.Event()  # set after the first read of the bucket
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._store: OutputStore | None = None
        self._finishing: dict[str, asyncio.Task[None]] = {}  # stopped runners not yet finished

    def wake(self) -> None:
        """Look again now (fleet work moved to or from this hub)."""
        self._wake.set()

    # ---- loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        next_stats = next_tags = 0.0
        warned = False
        try:
            while not self._stop.is_set():
                try:
                    await self._reload()
                    warned = False
                except (NatsError, OSError, BucketNotFoundError) as e:
                    if not warned:
                        why = ("it is missing: run `swtel nats init`" if isinstance(e, BucketNotFoundError)
                               else f"NATS did not answer: {e!r}")
                        log.warning("outputs: cannot read bucket %s (%s); retrying", BUCKET, why)
                        warned = True
                try:
                    self._reconcile()
                    self.ready.set()
                    now = time.monotonic()
                    if (now >= next_tags and self.inventory is not None
                            and any(d.device_tags for d in self.defs.values())):
                        next_tags = now + TAGS_EVERY_S
                        await self._refresh_tags()
                    if now >= next_stats:
                        next_stats = now + STATS_EVERY_S
                        await self._stats()
                except Exception:  # a bug here must never take ingest (the same task group) down
                    log.exception("outputs: bookkeeping failed; trying again")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
        finally:
            await self._stop_all()

    async def close(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _reload(self) -> None:
        if self._store is None:
            js = self.nc.jetstream(timeout=5)
            self._store = OutputStore(js, await js.key_value(BUCKET))
        defs = {d.name: d for d in await self._store.list()}
        for name in [n for n in self.defs if n not in defs]:
            # a listing is a watch that can come back short on a slow server: an output is gone only when
            # its key is
            try:
                defs[name] = (await self._store.get(name))[0]
            except NotFound:
                pass
        self.defs = defs
        for name in list(self.states):
            if name not in defs:
                del self.states[name]

    def _reconcile(self) -> None:
        active = self.is_active()
        for name, d in self.defs.items():
            st = self.states.get(name)
            if st is None or st.kind != d.kind:
                st = self.states[name] = OutputState(name, d.kind)
            st.paused = d.paused
            want = not d.paused and (d.kind == "scrape" or active)
            fingerprint = encoder.encode(d)
            cur = self.runners.get(name)
            if cur is not None and (not want or cur[0] != fingerprint or cur[2].done()):
                self._stop_runner(name)
                cur = None
            if want and cur is None and name not in self._finishing:
                # never two runners of one output at once (the old one may still be handing back messages):
                # one reader keeps the order and the missed count exact
                self._start_runner(d, st, fingerprint)
            if not want:
                st.status = "paused" if d.paused else "standby"
                st.error, st.error_since = "", 0.0
        for name in [n for n in self.runners if n not in self.defs]:
            self._stop_runner(name)

    def _tags_of(self, d: OutputDef) -> Callable[[str], tuple[tuple[str, str], ...]]:
        keys = tuple(d.device_tags)
        if not keys:
            return lambda _device: ()

        def tags_of(device: str) -> tuple[tuple[str, str], ...]:
            t = self.tags.get(device, {})
            return tuple((k, t[k]) for k in keys if k in t)

        return tags_of

    def _start_runner(self, d: OutputDef, st: OutputState, fingerprint: bytes) -> None:
        runner: Runner
        if d.kind == "scrape":
            runner = ScrapeRunner(self.nc, d, st, self._tags_of(d), self.fencing)
        else:
            runner = PushRunner(self.nc, d, st, self._tags_of(d), self.creds, self.fencing)
        st.status = "ok"
        task = asyncio.create_task(self._guard(d.name, runner), name=f"output-{d.name}")
        self.runners[d.name] = (fingerprint, runner, task)
        log.info("output %s (%s) started on this hub", d.name, d.kind)

    async def _guard(self, name: str, runner: Runner) -> None:
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must not stop the hub or other outputs; restarted at the next poll
            log.exception("output %s failed; restarting it", name)
            st = self.states.get(name)
            if st is not None:
                st.fail("error", f"internal error: {e!r}")
            await asyncio.sleep(2.0)

    def _stop_runner(self, name: str) -> None:
        cur = self.runners.pop(name, None)
        if cur is None:
            return
        _, runner, task = cur
        runner.close()
        self._finishing[name] = asyncio.get_running_loop().create_task(self._finish(name, task))

    async def _finish(self, name: str, task: asyncio.Task[None]) -> None:
        try:
            done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            log.info("output %s stopped on this hub", name)
        finally:
            self._finishing.pop(name, None)
            self._wake.set()  # start its successor now if one is wanted

    async def _stop_all(self) -> None:
        tasks = list(self._finishing.values())
        for _, runner, task in self.runners.values():
            runner.close()
            tasks.append(task)
        self.runners.clear()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _refresh_tags(self) -> None:
        assert self.inventory is not None
        try:
            inv: Inventory = await self.inventory()
            tags = {dev.name: dict(dev.tags) for dev in await inv.list()}
        except Exception as e:  # noqa: BLE001 (inventory unreadable: keep the tags we have)
            log.debug("outputs: inventory not read: %r", e)
            return
        if tags != self.tags:
            self.tags = tags
            for _, runner, _ in self.runners.values():
                (runner.encoder if isinstance(runner, PushRunner) else runner.store).forget()

    async def _stats(self) -> None:
        js = self.nc.jetstream(timeout=2)
        for name, d in list(self.defs.items()):
            st = self.states.get(name)
            if d.kind == "scrape" or st is None:
                continue
            try:
                info = await js.consumer_info(naming.STREAM_TELEMETRY, d.consumer)
            except NotFoundError:
                st.lag_messages = 0
                continue
            except (NatsError, OSError) as e:
                log.debug("output %s: consumer info: %r", name, e)
                continue
            st.lag_messages = (info.num_pending or 0) + (info.num_ack_pending or 0)
            if st.lag_messages == 0:
                st.lag_s = st.oldest_pending = 0.0
                continue
            floor = info.ack_floor.stream_seq if info.ack_floor and info.ack_floor.stream_seq else 0
            try:  # the oldest message not yet acknowledged: its stream time is the lag in seconds
                m = await js.get_msg(naming.STREAM_TELEMETRY, seq=floor + 1, subject=naming.TELEMETRY_ALL, next=True)
                st.oldest_pending = m.time.timestamp() if m.time else 0.0
            except (NatsError, OSError) as e:
                log.debug("output %s: oldest pending message: %r", name, e)

    # ---- what the API shows ----------------------------------------------------------------------

    def views(self) -> list[dict[str, Any]]:
        out = []
        for name in sorted(self.defs):
            d = self.defs[name]
            st = self.states.get(name) or OutputState(name, d.kind)
            view = st.view()
            view["definition"] = public_definition(d)
            out.append(view)
        return out

    def scrape_text(self, name: str | None) -> str | None:
        """The exposition of a scrape output (the only one when ``name`` is None); None if there is none."""
        names = [n for n, d in self.defs.items() if d.kind == "scrape"]
        if name is None:
            if len(names) != 1:
                return None
            name = names[0]
        cur = self.runners.get(name)
        if name not in names:
            return None
        if cur is None or not isinstance(cur[1], ScrapeRunner):
            return ""
        return cur[1].store.render()

    def degraded(self) -> list[str]:
        """Outputs running here that cannot deliver, as ``name: error`` lines for /api/health."""
        return [f"{s.name}: {s.error}" for s in self.states.values() if s.running and s.status in ("retrying", "error")]

    def render_metrics(self) -> str:
        rows = [(s, self.defs.get(s.name)) for s in self.states.values()]
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, get: Callable[[OutputState], float]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for s, _ in rows:
                v = get(s)
                lines.append(f'{name}{{output="{s.name}",kind="{s.kind}"}} {v:g}' if isinstance(v, float)
                             else f'{name}{{output="{s.name}",kind="{s.kind}"}} {v}')

        metric("swtel_output_samples_total", "counter", "samples delivered by this hub", lambda s: s.samples)
        metric("swtel_output_requests_total", "counter", "requests sent by this hub (retries included)",
               lambda s: s.requests)
        metric("swtel_output_retries_total", "counter", "requests that failed and were retried", lambda s: s.retries)
        metric("swtel_output_rejected_samples_total", "counter", "samples the destination refused for good (4xx)",
               lambda s: s.rejected)
        metric("swtel_output_missed_messages_total", "counter",
               "stream messages removed by retention before the output read them", lambda s: s.missed)
        metric("swtel_output_skipped_samples_total", "counter",
               "samples not exported by the mapping (strings, dropped paths)", lambda s: sum(s.counts.skipped.values()))
        metric("swtel_output_lag_messages", "gauge", "messages in the output's consumer not yet acknowledged",
               lambda s: s.lag_messages)
        metric("swtel_output_lag_seconds", "gauge", "age of the oldest message not yet delivered (upper bound)",
               lambda s: float(s.lag_seconds()))
        metric("swtel_output_up", "gauge", "1 while the output runs on this hub and delivers",
               lambda s: int(s.running and s.status == "ok"))
        metric("swtel_output_error", "gauge", "1 while the output runs on this hub and fails to deliver",
               lambda s: int(s.running and s.status in ("retrying", "error")))
        return "\n".join(lines) + "\n" if rows else ""


def public_definition(d: OutputDef) -> dict[str, Any]:
    """The definition as stored (it holds no secret: the credential is a reference)."""
    return msgspec.to_builtins(msgspec.structs.asdict(d))  # type: ignore[no-any-return]
