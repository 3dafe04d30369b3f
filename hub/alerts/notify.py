"""The notification outbox worker: delivers ``alert_outbox`` rows through their channels, with retries.

Rows are written by the engine in the transaction of the transition that caused them, so a notification
exists exactly when its transition does. Delivery is at least once: a worker claims due rows
(``FOR UPDATE SKIP LOCKED``, then ``status = 'sending'`` with a lock deadline), sends, and records the
outcome; rows claimed by a worker that died become due again when the lock deadline passes. Receivers
that must not see a duplicate can use the ``Idempotency-Key`` header (``swtel-alert-<outbox id>``).
Each channel gets its rows in outbox order, one at a time (channels in parallel), so a "resolved" never
arrives before its "firing"; after a failure the channel's later rows of the round wait for their retry.
Failed attempts are retried after ``backoff_base_s × 2^(attempt-1)`` (capped) until ``max_attempts``,
then the row is ``failed``; ``swtel alert outbox`` and the API show status, attempts and the last error.
Any number of hubs may run a notifier; in practice the elected one does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg

from .channels import DeliveryError, Sender

log = logging.getLogger("swtel.hub.alerts.notify")


class Notifier:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_attempts: int = 8,
        backoff_base_s: float = 5.0,
        backoff_cap_s: float = 900.0,
        poll_s: float = 2.0,
        lock_s: float = 120.0,
        batch: int = 50,
        send_timeout_s: float = 10.0,
    ) -> None:
        self.pool = pool
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.poll_s = poll_s
        self.lock_s = max(lock_s, 2 * send_timeout_s)  # a live sender always finishes before its lock ends
        self.batch = batch
        self.sender = Sender(timeout=send_timeout_s)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (the engine calls this after queueing notifications)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until :meth:`close`; a database outage is logged and retried, never fatal."""
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    n = await self.deliver_once()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                    log.warning("alert outbox: database unavailable (%s); retrying", type(e).__name__)
                    n = 0
                if n >= self.batch:
                    continue  # more may be due right now
                wake, stop = asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._stop.wait())
                try:
                    await asyncio.wait((wake, stop), timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    wake.cancel()
                    stop.cancel()
        finally:
            await self.sender.close()

    def close(self) -> None:
        """Stop after the batch in flight (each send is bounded by its timeout)."""
        self._stop.set()

    async def deliver_once(self) -> int:
        """Claim the due rows and attempt each once; returns how many were attempted."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """UPDATE alert_outbox SET status = 'sending', attempts = attempts + 1,
                          locked_until = now() + make_interval(secs => $1)
                   WHERE id IN (SELECT id FROM alert_outbox o
                                WHERE ((status = 'pending' AND next_attempt_at <= now())
                                       OR (status = 'sending' AND locked_until < now()))
                                  -- in order per channel: nothing overtakes an earlier row still waiting
                                  -- for its retry or being sent
                                  AND NOT EXISTS (
                                      SELECT 1 FROM alert_outbox e
                                      WHERE e.channel = o.channel AND e.id < o.id
                                        AND ((e.status = 'pending' AND e.next_attempt_at > now())
                                             OR (e.status = 'sending' AND e.locked_until >= now())))
                                ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                   RETURNING id, channel, kind, payload, attempts""",
                self.lock_s, self.batch,
            )
            if not rows:
                return 0
            channels = {r["name"]: (r["kind"], json.loads(r["config"])) for r in await conn.fetch(
                "SELECT name, kind, config FROM alert_channels WHERE name = ANY($1)", list({r["channel"] for r in rows}))}
        outcomes: list[tuple[Any, str | None]] = []
        deferred: list[Any] = []
        loop = asyncio.get_running_loop()
        budget_end = loop.time() + self.lock_s / 2  # claimed rows must be settled well before their lock ends

        async def deliver(channel: str, queue: list[Any]) -> None:
            """One channel's rows in order (a resolved never arrives before its firing); after a failure
            the rest wait for their retry; the claim query keeps that order across retries."""
            ch = channels.get(channel)
            failed: str | None = None if ch is not None else f"channel {channel!r} no longer exists"
            for row in queue:
                if failed is not None:
                    outcomes.append((row, failed if ch is None else f"not sent: waits for an earlier one ({failed})"))
                    continue
                if loop.time() > budget_end:
                    deferred.append(row)
                    continue
                try:
                    await self.sender.send(ch[0], ch[1], json.loads(row["payload"]), f"swtel-alert-{row['id']}")
                    outcomes.append((row, None))
                except DeliveryError as e:
                    failed = str(e)
                    outcomes.append((row, failed))

        by_channel: dict[str, list[Any]] = {}
        for row in sorted(rows, key=lambda r: r["id"]):
            by_channel.setdefault(row["channel"], []).append(row)
        async with asyncio.TaskGroup() as tg:  # channels in parallel
            for channel, queue in by_channel.items():
                tg.create_task(deliver(channel, queue))
        async with self.pool.acquire() as conn:
            for row, error in outcomes:
                await self._record(conn, row, error)
            for row in deferred:  # not attempted: back to pending, the attempt not counted
                await conn.execute(
                    """UPDATE alert_outbox SET status = 'pending', attempts = attempts - 1, locked_until = NULL
                       WHERE id = $1 AND attempts = $2""", row["id"], row["attempts"])
        return len(rows)

    async def _record(self, conn: asyncpg.Connection, row: Any, error: str | None) -> None:
        # Guarded by attempts: a worker whose lock expired (and whose row another worker re-claimed)
        # does not overwrite the newer attempt's outcome.
        if error is None:
            await conn.execute(
                """UPDATE alert_outbox SET status = 'sent', sent_at = now(), locked_until = NULL, last_error = ''
                   WHERE id = $1 AND attempts = $2""", row["id"], row["attempts"])
            log.info("alert notification %d (%s) sent via %s", row["id"], row["kind"], row["channel"])
            return
        final = row["attempts"] >= self.max_attempts
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (row["attempts"] - 1))
        await conn.execute(
            """UPDATE alert_outbox SET status = $3, last_error = $4, locked_until = NULL,
                      next_attempt_at = now() + make_interval(secs => $5)
               WHERE id = $1 AND attempts = $2""",
            row["id"], row["attempts"], "failed" if final else "pending", error, delay,
        )
        log.warning("alert notification %d via %s failed (attempt %d/%d%s): %s", row["id"], row["channel"],
                    row["attempts"], self.max_attempts, ", giving up" if final else f", next in {delay:g}s", error)
