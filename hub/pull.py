"""JetStream pull fetches without nats-py's per-message machinery.

nats-py's ``PullSubscription.fetch`` takes each message of a batch with its own task, ``wait_for`` and
uuid: about 25 µs of CPU per message, a fifth of the hub's ingest CPU at 100 samples per message. Here one
core subscription on an inbox collects what pull requests deliver, in a callback, and a fetch waits once:
for its batch to be complete, or for the server's status message that ends the request.

The protocol (the same one nats-py speaks): a request on ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``
with the inbox as reply subject; stream messages arrive with their ``$JS.ACK…`` reply subjects (acked,
nak'd and terminated as usual); a message without a reply subject is the server's status (404 no
messages, 408 request expired, 409 …) and ends a request; each request has its own reply subject, so a
late status of an earlier request cannot end the current one. A fetch first asks with ``no_wait`` (what the
stream holds now, at once), and only when that brings nothing, waits up to its timeout for the first
message. Messages of a request that arrive after its fetch returned are kept for the next fetch.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NotJSMessageError
from nats.errors import TimeoutError as NatsTimeout

EXPIRES_MARGIN_S = 0.1  # the server ends a waiting request this much before the fetch gives up


def position(m: Msg) -> tuple[int, int]:
    """(stream sequence, store time in ns since the epoch) of a JetStream message, read from its ack subject
    as nats-py's ``Msg.metadata`` reads it (the 9-token layout and the newer one with domain and account
    hash), without the dataclasses and datetime that builds per message. NotJSMessageError otherwise."""
    t = (m.reply or "").split(".")
    if len(t) >= 9 and t[0] == "$JS" and t[1] == "ACK":
        if len(t) == 9:
            return int(t[5]), int(t[7])
        if len(t) >= 11:
            return int(t[7]), int(t[9])
    raise NotJSMessageError


class Puller:
    """One per worker: ``await start()``, then ``fetch()`` in a loop, ``unsubscribe()`` at the end."""

    def __init__(self, nc: NATS, stream: str, consumer: str) -> None:
        self.nc = nc
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.inbox = nc.new_inbox()
        self._n = 0
        self._reply = ""  # the reply subject of the current request
        self._buf: list[Msg] = []
        self._want = 0
        self._done = asyncio.Event()
        self._sub: Subscription | None = None

    async def start(self) -> Puller:
        self._sub = await self.nc.subscribe(f"{self.inbox}.*", cb=self._on_msg)
        return self

    async def _on_msg(self, m: Msg) -> None:
        if not m.reply:  # a status, not a stream message: the request it answers is over
            if m.subject == self._reply:
                self._done.set()
            return
        self._buf.append(m)
        if len(self._buf) >= self._want:
            self._done.set()

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` messages; raises nats' TimeoutError when none came within ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout  # for both requests together
        if len(self._buf) < batch:
            await self._request({"batch": batch - len(self._buf), "no_wait": True}, batch, deadline)
        if not self._buf:
            left = deadline - asyncio.get_running_loop().time()
            if left > 2 * EXPIRES_MARGIN_S:  # (else too little time left to wait for anything)
                expires = left - EXPIRES_MARGIN_S
                await self._request({"batch": batch, "expires": int(expires * 1e9)}, 1, deadline)
        if not self._buf:
            raise NatsTimeout
        out, self._buf = self._buf[:batch], self._buf[batch:]
        return out

    async def _request(self, req: dict[str, object], want: int, deadline: float) -> None:
        """Send one pull request; return when ``want`` messages are at hand, its status came, or at ``deadline``
        (event-loop time)."""
        self._n += 1
        self._reply = f"{self.inbox}.{self._n}"
        self._want = want
        self._done.clear()
        await self.nc.publish(self.subject, json.dumps(req).encode(), reply=self._reply)
        try:
            await asyncio.wait_for(self._done.wait(), max(0.0, deadline - asyncio.get_running_loop().time()))
        except TimeoutError:
            pass

    async def unsubscribe(self) -> None:
        """Stop receiving; messages fetched from the server but not handed out go back at once."""
        left, self._buf = self._buf, []
        if self._sub is not None:
            await self._sub.unsubscribe()
        for m in left:
            await m.nak()
