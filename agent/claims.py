"""Compare-and-set operations on ``swtel_leases/<device>``: claim, take over, release.

Every write names its expected last revision, so two agents can never both believe they won: the loser
gets a wrong-last-sequence error and simply looks again. The revision a write returns is the claim's
fencing token. See docs/LEASES.md for the protocol and NATS-NOTES.md for the traps handled here
(``shared/kvcas.py``, shared with the hubs' fleet-work election).
"""

from __future__ import annotations

import time

from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from swtel.shared import kvcas, naming, wire

# Every call is bounded by the JetStream context's timeout (the agent uses 2 s); no extra wait_for task
# per write: at a cold start with thousands of claims the per-write overhead is what counts.


class Claims:
    """Lease writes for one agent incarnation (the incarnation changes after self-fencing)."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, agent: str) -> None:
        self.js = js
        self.kv = kv
        self.agent = agent
        self.ops = 0  # writes attempted, for statistics

    def _value(self, device: str, incarnation: str) -> bytes:
        lease = wire.Lease(device=device, agent=self.agent, incarnation=incarnation, acquired_ns=time.time_ns())
        return wire.encode_kv(lease)

    async def create(self, device: str, incarnation: str) -> int | None:
        """Take a free device; ``None`` if someone holds it. Works over DEL/PURGE tombstones and over the
        server's expiry markers, which nats-py's ``create`` alone does not (it reports them as held)."""
        self.ops += 1
        return await kvcas.create(self.js, self.kv, naming.BUCKET_LEASES, naming.encode_name(device),
                                  self._value(device, incarnation))

    async def take_over(self, device: str, incarnation: str, last: int) -> int | None:
        """Replace the entry at revision ``last`` (an orphaned claim or a tombstone); ``None`` if it moved."""
        self.ops += 1
        return await kvcas.update_if(self.kv, naming.encode_name(device), self._value(device, incarnation), last)

    async def release(self, device: str, token: int) -> bool:
        """Delete our claim if it is still at ``token``; ``False`` if it had already moved."""
        self.ops += 1
        return await kvcas.delete_if(self.kv, naming.encode_name(device), token)
