"""Compare-and-set operations on ``swtel_leases/<device>``: claim, take over, release.

Every write names its expected last revision, so two agents can never both believe they won: the loser
gets a wrong-last-sequence error and simply looks again. The revision a write returns is the claim's
fencing token. See docs/LEASES.md for the protocol and NATS-NOTES.md for the traps handled here.
"""

from __future__ import annotations

import time

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE, KeyValue

from swtel.shared import naming, wire

WRONG_LAST_SEQUENCE = 10071
# Every call is bounded by the JetStream context's timeout (the agent uses 2 s); no extra wait_for task
# per write: at a cold start with thousands of claims the per-write overhead is what counts.


class Claims:
    """Lease writes for one agent incarnation (the incarnation changes after self-fencing)."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, agent: str) -> None:
        self.js = js
        self.kv = kv
        self.agent = agent
        self.stream = f"KV_{naming.BUCKET_LEASES}"
        self.ops = 0  # writes attempted, for statistics

    def _value(self, device: str, incarnation: str) -> bytes:
        lease = wire.Lease(device=device, agent=self.agent, incarnation=incarnation, acquired_ns=time.time_ns())
        return wire.encode_kv(lease)

    async def create(self, device: str, incarnation: str) -> int | None:
        """Take a free device; ``None`` if someone holds it. Works over DEL/PURGE tombstones and over the
        server's expiry markers, which nats-py's ``create`` alone does not (it reports them as held)."""
        key = naming.encode_name(device)
        value = self._value(device, incarnation)
        self.ops += 1
        try:
            return await self.kv.create(key, value)
        except KeyWrongLastSequenceError:
            pass
        last = await self._tombstone_revision(key)
        if last is None:
            return None
        return await self.take_over(device, incarnation, last)

    async def take_over(self, device: str, incarnation: str, last: int) -> int | None:
        """Replace the entry at revision ``last`` (an orphaned claim or a tombstone); ``None`` if it moved."""
        self.ops += 1
        try:
            return await self.kv.update(naming.encode_name(device), self._value(device, incarnation), last=last)
        except KeyWrongLastSequenceError:
            return None

    async def release(self, device: str, token: int) -> bool:
        """Delete our claim if it is still at ``token``; ``False`` if it had already moved."""
        self.ops += 1
        try:
            await self.kv.delete(naming.encode_name(device), last=token)
            return True
        except (BadRequestError, KeyWrongLastSequenceError) as e:
            # A stale `last` on delete is a plain BadRequestError (err_code 10071) in nats-py.
            if isinstance(e, KeyWrongLastSequenceError) or getattr(e, "err_code", None) == WRONG_LAST_SEQUENCE:
                return False
            raise

    async def _tombstone_revision(self, key: str) -> int | None:
        """The revision of the key's last message if it is a tombstone or a server marker, else ``None``."""
        try:
            msg = await self.js.get_msg(self.stream, subject=f"$KV.{naming.BUCKET_LEASES}.{key}")
        except NotFoundError:
            return None
        headers = msg.headers or {}
        if headers.get(KV_OP) in (KV_DEL, KV_PURGE) or KV_MARKER_REASON in headers:
            return msg.seq
        return None
