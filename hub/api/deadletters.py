"""``GET /api/deadletters``: messages the hub kept aside instead of storing (hub/deadletter.py), newest first;
``GET /api/deadletters/{id}/payload``: one message's raw bytes (admins: it may hold anything a sender put in)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, Parameter, QueryParameter

from swtel.hub.auth.middleware import require_role

from .. import deadletter
from ..service import HubDep
from . import params


class DeadLetter(msgspec.Struct):
    id: int
    at: str  # RFC 3339
    subject: str
    stream_seq: int  # the message's sequence in its stream (0: not from JetStream)
    device: str  # as the message claimed it ('' when undecodable)
    agent: str
    token: str | None  # decimal text: a forged token may not fit 64 bits
    seq: str | None
    reason: str  # malformed, unknown_kind, nul_byte, int_range, token_not_issued, db_refused, …
    detail: str
    payload_bytes: int


@get("/api/deadletters", tags=["hub"], summary="Messages kept aside instead of stored, newest first")
async def deadletter_list(
    hub: HubDep,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000, description="most rows returned")] = 100,
    reason: Annotated[str | None, QueryParameter(max_length=64, description="only this reason")] = None,
    device: Annotated[str | None, QueryParameter(max_length=256, description="only this device")] = None,
    since: Annotated[str | None, QueryParameter(description="RFC 3339, Unix seconds, or now-1h")] = None,
) -> list[DeadLetter]:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    start = params.when(since, "since", now, None) if since else None  # type: ignore[arg-type]
    rows = await deadletter.listing(hub.require_storage().pool, limit=limit, reason=reason, device=device, since=start)
    return [DeadLetter(**r) for r in rows]


@get("/api/deadletters/{letter_id:int}/payload", tags=["hub"], summary="The raw bytes of one dead letter",
     guards=[require_role("admin")], media_type="application/octet-stream")
async def deadletter_payload(
    hub: HubDep, letter_id: FromPath[Annotated[int, Parameter(ge=1, le=2**63 - 1, description="dead letter id")]]
) -> Response[bytes]:
    data = await deadletter.payload(hub.require_storage().pool, letter_id)
    if data is None:
        raise NotFoundException(detail=f"dead letter {letter_id} does not exist")
    return Response(bytes(data), media_type="application/octet-stream")
