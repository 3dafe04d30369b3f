"""Fencing at the hub: is a telemetry batch's lease token genuine, and when did that lease end?

A batch is genuine when its ``token`` is a revision of ``swtel_leases/<device>`` whose value named the
batch's device and agent (docs/STORAGE.md, "Fencing"). The token is not a high-water mark: a genuine
batch is stored whenever it arrives, in any order, so the previous holder's history is never erased by
the next holder's data, and a forged token changes nothing for anyone else.

Where the facts come from, in order:

1. this hub's memory (a revision's content never changes; an ended tenure never changes either);
2. the ``lease_tenures`` table, written by every hub the first time it checks a revision, so a revision
   that has since aged out of the bucket's history (``lease_history`` revisions kept per key) is still
   known to every hub;
3. the bucket itself: ``STREAM.MSG.GET`` of the revision's sequence in ``KV_swtel_leases`` (the content
   and the subject tell device and agent) and of the next message on that key's subject (its time is
   the end of the tenure).

A token the bucket has not issued yet (above its last sequence) is forged. A token at or below the last
sequence that neither the bucket nor the table knows (aged out while no hub was checking, the bucket
purged, or recreated so revisions restarted) cannot be proved genuine: it is not stored either, but
kept aside as ``token_unverifiable`` with its payload, so nothing is silently lost (docs/STORAGE.md).

The decision itself is pure (:func:`judge`); the lookups are the I/O around it (:class:`LeaseLedger`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from swtel.shared import naming, wire

log = logging.getLogger("swtel.hub.fencing")
LEASE_STREAM = f"KV_{naming.BUCKET_LEASES}"
ONGOING_RECHECK_S = 30.0  # a safety net: an ongoing tenure is re-read at least this often
KV_OP = "KV-Operation"
MARKER = "Nats-Marker-Reason"


@dataclass(frozen=True)
class Tenure:
    """One lease revision: ``token`` named ``agent`` for ``device`` from ``start_ns`` until ``end_ns``
    (the time of the key's next revision, ``None`` while it is the current one). Server clock."""

    device: str
    token: int
    agent: str
    incarnation: str
    start_ns: int
    end_ns: int | None


@dataclass(frozen=True)
class Refusal:
    reason: str  # token_not_issued, token_other_device, token_not_a_claim, token_wrong_agent, token_unverifiable
    detail: str


def judge(device: str, agent: str, token: int, tenure: Tenure | None, *, last_revision: int) -> Tenure | Refusal:
    """The verdict for a batch of (device, agent, token), given what is known of revision ``token``."""
    if token <= 0 or token > last_revision:
        return Refusal("token_not_issued", f"token {token} was never issued (the lease bucket is at {last_revision})")
    if tenure is None:
        return Refusal("token_unverifiable", f"revision {token} is no longer in the lease history nor recorded")
    if tenure.device != device:
        return Refusal("token_other_device", f"revision {token} is a lease of {tenure.device!r}, not {device!r}")
    if not tenure.agent:
        return Refusal("token_not_a_claim", f"revision {token} of {device!r} is a release, not a claim")
    if tenure.agent != agent:
        return Refusal("token_wrong_agent", f"revision {token} of {device!r} named agent {tenure.agent!r}, not {agent!r}")
    return tenure


def cutoff_ns(tenure: Tenure, grace_s: float) -> int | None:
    """Samples stamped at or after this belong to no tenure of this holder (None: the lease is current)."""
    return None if tenure.end_ns is None else tenure.end_ns + int(grace_s * 1e9)


SCHEMA = """
CREATE TABLE IF NOT EXISTS lease_tenures (
    device text NOT NULL,
    token bigint NOT NULL,
    agent text NOT NULL,              -- '' for a release (DEL/PURGE) revision
    incarnation text NOT NULL DEFAULT '',
    started timestamptz NOT NULL,
    ended timestamptz,                -- time of the key's next revision; NULL while current (or not yet seen)
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, token)
);
"""


def _ns(dt: object) -> int:
    return int(dt.timestamp() * 1e9)  # type: ignore[attr-defined]


class LeaseLedger:
    """What this hub knows of lease revisions; safe for concurrent use by several ingest workers."""

    def __init__(self, nc: NATS, pool: asyncpg.Pool) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=5)
        self.pool = pool
        self._known: dict[tuple[str, int], tuple[Tenure | None, float]] = {}  # → (tenure, checked at, monotonic)
        self._ongoing: dict[str, set[int]] = {}  # device → tokens cached as still current (forgotten on a change)
        self._last_rev = 0
        self._sub = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Follow writes to the lease bucket so that a current tenure's end is noticed at once."""
        try:
            self._sub = await self.nc.subscribe(f"$KV.{naming.BUCKET_LEASES}.>", cb=self._changed)
        except NatsError as e:  # older permission files: ends are then noticed within ONGOING_RECHECK_S
            log.warning("cannot follow lease changes (%s); tenure ends are re-read every %gs", e, ONGOING_RECHECK_S)

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # noqa: BLE001 (connection gone)
                pass

    async def _changed(self, msg) -> None:  # type: ignore[no-untyped-def]
        try:
            device = naming.decode_name(msg.subject.rsplit(".", 1)[-1])
        except Exception:  # noqa: BLE001 (not a key this project writes)
            return
        for token in self._ongoing.pop(device, ()):
            self._known.pop((device, token), None)

    async def verdicts(self, keys: set[tuple[str, str, int]]) -> dict[tuple[str, str, int], Tenure | Refusal]:
        """(device, agent, token) → verdict, for every key of one fetch."""
        need = {(d, t) for d, _, t in keys}
        tenures: dict[tuple[str, int], Tenure | None] = {}
        now = time.monotonic()
        for key in need:  # the steady state: every token known and fresh, no task, no round trip
            hit = self._known.get(key)
            if hit is not None and hit[0] is not None and (hit[0].end_ns is not None or now - hit[1] < ONGOING_RECHECK_S):
                tenures[key] = hit[0]
        missing = [k for k in need if k not in tenures]
        if missing:
            tenures.update(zip(missing, await asyncio.gather(*(self.tenure(d, t) for d, t in missing))))
        if any(t is None or tok > self._last_rev for (_, tok), t in tenures.items()):
            await self._refresh_last()
        return {(d, a, t): judge(d, a, t, tenures[(d, t)], last_revision=max(self._last_rev, t if tenures[(d, t)] else 0))
                for d, a, t in keys}

    async def _refresh_last(self) -> None:
        info = await self.js.stream_info(LEASE_STREAM)
        self._last_rev = max(self._last_rev, info.state.last_seq or 0)

    async def tenure(self, device: str, token: int) -> Tenure | None:
        if not 0 < token < 2**63:
            return None
        key = (device, token)
        hit = self._known.get(key)
        now = time.monotonic()
        if hit is not None and (hit[0] is None or hit[0].end_ns is not None or now - hit[1] < ONGOING_RECHECK_S):
            if hit[0] is not None:
                return hit[0]
        t = await self._from_db(device, token)
        if t is None or t.end_ns is None:
            t = await self._from_bucket(device, token) or t
        if t is not None:
            self._known[key] = (t, now)
            self._last_rev = max(self._last_rev, token)
            if t.end_ns is None:
                self._ongoing.setdefault(device, set()).add(token)
        return t

    async def _from_db(self, device: str, token: int) -> Tenure | None:
        r = await self.pool.fetchrow(
            "SELECT device, token, agent, incarnation, started, ended FROM lease_tenures WHERE device = $1 AND token = $2",
            device, token)
        if r is None:
            return None
        return Tenure(r["device"], r["token"], r["agent"], r["incarnation"], _ns(r["started"]),
                      _ns(r["ended"]) if r["ended"] is not None else None)

    async def _from_bucket(self, device: str, token: int) -> Tenure | None:
        subject = f"$KV.{naming.BUCKET_LEASES}.{naming.encode_name(device)}"
        try:
            m = await self.js.get_msg(LEASE_STREAM, seq=token)
        except NotFoundError:
            return None
        try:
            owner = naming.decode_name(m.subject.rsplit(".", 1)[-1]) if m.subject else ""
        except Exception:  # noqa: BLE001
            owner = ""
        released = bool(m.headers and (m.headers.get(KV_OP) or m.headers.get(MARKER)))
        agent = incarnation = ""
        if owner == device and not released:
            try:
                lease = wire.lease_decoder.decode(m.data or b"")
            except (msgspec.DecodeError, msgspec.ValidationError):
                lease = None
            if lease is not None and lease.device == device:
                agent, incarnation = lease.agent, lease.incarnation
        end_ns = None
        if owner == device:
            try:
                nxt = await self.js.get_msg(LEASE_STREAM, seq=token + 1, subject=subject, next=True)
                end_ns = _ns(nxt.time)
            except NotFoundError:
                pass
        t = Tenure(owner or "?", token, agent, incarnation, _ns(m.time), end_ns)
        if owner == device:  # record it: the bucket keeps only the last few revisions per key
            await self.pool.execute(
                "INSERT INTO lease_tenures (device, token, agent, incarnation, started, ended) "
                "VALUES ($1, $2, $3, $4, to_timestamp($5::float8 / 1e9), to_timestamp($6::float8 / 1e9)) "
                "ON CONFLICT (device, token) DO UPDATE SET ended = coalesce(lease_tenures.ended, EXCLUDED.ended)",
                device, token, agent, incarnation, t.start_ns, end_ns)
        return t
