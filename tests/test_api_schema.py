"""Property-based API test: schemathesis generates requests from the hub's own OpenAPI document (/schema)
and sends them, as an admin with an API token, to a real ``swtel hub run`` process (real NATS, real
PostgreSQL). Every response must be a non-5xx and match the schema. Examples are bounded so the test
stays well under a minute."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from support.hubs import hub_proc
from support.ports import free_port
from support.telemetry import api_token, migrate
from support.waits import eventually

# per operation; a longer, random exploration: SWTEL_FUZZ_EXAMPLES=200 SWTEL_FUZZ_RANDOM=1 pytest tests/test_api_schema.py
EXAMPLES = int(os.environ.get("SWTEL_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("SWTEL_FUZZ_RANDOM") == "1"  # else derandomized: the same examples every run
# operations that would revoke the caller's own credentials (then everything after is a 401)
SKIP = {("DELETE", "/api/tokens/{token_id}"), ("DELETE", "/api/users/{name}"), ("POST", "/api/logout")}


def _fuzz(base: str, headers: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json", headers=headers)
    failures: list[str] = []
    ran = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue
        ran += 1

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=base, headers=headers, timeout=10)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as e:  # noqa: BLE001 (collect every operation's failure, report them together)
            failures.append(f"{op.method.upper()} {op.path}: {str(e)[:600]}")
    assert ran >= 20, f"only {ran} operations in the schema"
    return failures


@pytest.mark.asyncio
@pytest.mark.timeout(180 if not RANDOM else 3600)
async def test_api_fuzzed_from_its_schema_has_no_5xx_and_matches_it(
    bootstrapped: str, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    headers = await api_token(database_url, role="admin", name="fuzz-admin")
    port = free_port()
    proc = hub_proc(bootstrapped, database_url, port, tmp_path / "hub.log")
    base = f"http://127.0.0.1:{port}"
    try:
        async def up() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as c:
                    return (await c.get(f"{base}/api/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, timeout=30, what="the hub to answer /api/health")
        failures = await asyncio.to_thread(_fuzz, base, headers)
        assert not failures, "\n".join(failures) + "\n(hub log: " + (tmp_path / "hub.log").read_text()[-3000:] + ")"
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 15)
        except TimeoutError:
            proc.kill()
