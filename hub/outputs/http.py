"""One HTTP client per push output: authentication from a credential reference, TLS, and what a status means.

A status is classified, never guessed per call site:

- 2xx → delivered;
- 429 and 5xx, timeouts, refused connections → ``retry``: the same request again after a bounded backoff,
  its messages held (not acknowledged) meanwhile — the remote-write spec's rule;
- 401, 403, 404, 407 → ``hold``: the destination refuses *every* request (wrong credential, wrong URL);
  the data is not at fault, so it is held and retried like a 5xx while the output shows the error (the one
  place this differs from the remote-write spec, which says not to retry 4xx: dropping everything on a
  wrong password is the silent loss outputs must not have);
- any other 4xx → ``reject``: the destination refused this data (malformed, out of order, too old); it is
  not retried, and its samples are counted as rejected with the reason.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from typing import Literal

import httpx

from swtel.agent.credentials import Credentials
from swtel.shared.errors import InvalidInput

from .model import OutputDef

Verdict = Literal["ok", "retry", "hold", "reject"]
HOLD_STATUSES = frozenset({401, 403, 404, 407})
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Result:
    verdict: Verdict
    status: int  # 0 when no HTTP answer came
    detail: str


def classify(status: int) -> Verdict:
    if 200 <= status < 300:
        return "ok"
    if status == 429 or status >= 500:
        return "retry"
    if status in HOLD_STATUSES:
        return "hold"
    return "reject" if 400 <= status < 500 else "retry"


def auth_header(d: OutputDef, creds: Credentials) -> dict[str, str]:
    """The Authorization header of an output; the secret is read on this host, never from KV."""
    if d.auth == "none":
        return {}
    cred = creds.resolve(d.credential)
    assert cred is not None
    if d.auth == "bearer":
        token = cred.password or cred.username
        return {"Authorization": ("Token " if d.kind == "influx" and d.influx_version == 2 else "Bearer ") + token}
    raw = f"{cred.username}:{cred.password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def client(d: OutputDef) -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if d.tls_ca:
        try:
            verify = ssl.create_default_context(cafile=d.tls_ca)
        except (OSError, ssl.SSLError) as e:
            raise InvalidInput(f"output {d.name}: cannot read CA bundle {d.tls_ca}: {e}") from None
    return httpx.AsyncClient(timeout=TIMEOUT_S, verify=verify, follow_redirects=False,
                             limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))


async def post(c: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> Result:
    try:
        r = await c.post(url, content=body, headers=headers)
    except httpx.HTTPError as e:
        return Result("retry", 0, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
    verdict = classify(r.status_code)
    detail = "" if verdict == "ok" else f"HTTP {r.status_code}: {r.text.strip()[:300]}"
    return Result(verdict, r.status_code, detail)
