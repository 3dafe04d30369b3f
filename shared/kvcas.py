"""Compare-and-set writes on a KV key shared by the agents' leases and the hubs' election.

nats-py's ``create`` retries over DEL/PURGE tombstones but not over the server's expiry markers (it reports
the key as held while a marker exists, see NATS-NOTES.md): :func:`create` also takes a key whose last
message is a marker. :func:`delete_if` turns nats-py's plain ``BadRequestError`` for a stale ``last`` into
``False``. The revision a write returns is the holder's fencing token.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE, KeyValue

WRONG_LAST_SEQUENCE = 10071


async def last_message(js: JetStreamContext, bucket: str, key: str) -> RawStreamMsg | None:
    """The key's last message (a value, a tombstone or a marker); ``None`` if it has none."""
    try:
        return await js.get_msg(f"KV_{bucket}", subject=f"$KV.{bucket}.{key}")
    except NotFoundError:
        return None


def is_tombstone(msg: RawStreamMsg) -> bool:
    """A DEL/PURGE tombstone or a server expiry marker: the key is free, at revision ``msg.seq``."""
    headers = msg.headers or {}
    return headers.get(KV_OP) in (KV_DEL, KV_PURGE) or KV_MARKER_REASON in headers


async def tombstone_revision(js: JetStreamContext, bucket: str, key: str) -> int | None:
    """The revision of the key's last message if it is a tombstone or a server marker, else ``None``
    (also ``None`` when the key has no message at all: then a plain ``create`` works)."""
    msg = await last_message(js, bucket, key)
    return msg.seq if msg is not None and is_tombstone(msg) else None


async def create(js: JetStreamContext, kv: KeyValue, bucket: str, key: str, value: bytes) -> int | None:
    """Write ``key`` if nobody holds it; ``None`` if someone does (or won the race)."""
    try:
        return await kv.create(key, value)
    except KeyWrongLastSequenceError:
        pass
    last = await tombstone_revision(js, bucket, key)
    if last is None:
        return None
    return await update_if(kv, key, value, last)


async def update_if(kv: KeyValue, key: str, value: bytes, last: int) -> int | None:
    """Replace the entry at revision ``last``; ``None`` if it moved."""
    try:
        return await kv.update(key, value, last=last)
    except KeyWrongLastSequenceError:
        return None


async def delete_if(kv: KeyValue, key: str, last: int) -> bool:
    """Delete ``key`` if it is still at revision ``last``; ``False`` if it had already moved."""
    try:
        await kv.delete(key, last=last)
        return True
    except (BadRequestError, KeyWrongLastSequenceError) as e:
        # A stale `last` on delete is a plain BadRequestError (err_code 10071) in nats-py.
        if isinstance(e, KeyWrongLastSequenceError) or getattr(e, "err_code", None) == WRONG_LAST_SEQUENCE:
            return False
        raise
