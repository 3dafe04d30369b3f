"""Authentication and TLS of push outputs against real servers that check them (Debian's packages):

- Prometheus 2.42 with a web config (``--web.config.file``) holding a bcrypt ``basic_auth_users`` entry and
  a ``tls_server_config``: remote-write over https with basic auth, the server verified with the given CA;
- InfluxDB 1.6 with ``auth-enabled`` and a ``shared-secret``: it verifies bearer tokens (JWTs signed with the
  secret and naming a user), so ``--auth bearer`` is tested for real there. Neither Prometheus 2.42 nor
  VictoriaMetrics 1.79 verifies a bearer token itself (their receivers take basic auth; bearer tokens are
  checked by a proxy in front of them, e.g. vmauth or Mimir's gateway), so this is the one real peer.

A wrong secret is the destination refusing every request: the data is held (not dropped) and the output
shows the 401; nothing is delivered and nothing is lost."""

from __future__ import annotations

import time
from typing import Any

import pytest

from support import tsdb
from support.outputs import publish_all, states
from support.waits import eventually
from test_outputs_e2e import (DEVICES, NUMERIC_PER_ROUND, STATE_PER_ROUND, add_output, all_stored, check_equal,
                              delivered, hub, running, telemetry, view)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
ROUNDS = 3


async def refused(client: Any, name: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        v = await view(client, name)
        return v if v and v["status"] == "error" and "401" in v["error"] and v["lag_messages"] > 0 else None

    return await eventually(probe, timeout=30, what=f"output {name} to show the destination's 401")


async def test_remote_write_to_prometheus_over_tls_with_basic_auth(bootstrapped: str, database_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with tsdb.Prometheus(basic_auth=("swtel", "s3cret-rw"), tls=True) as prom:
        assert prom.url.startswith("https://")
        monkeypatch.setenv("SWTEL_CRED_PROM_RW_USERNAME", "swtel")
        monkeypatch.setenv("SWTEL_CRED_PROM_RW_PASSWORD", "s3cret-rw")
        monkeypatch.setenv("SWTEL_CRED_PROM_BAD_USERNAME", "swtel")
        monkeypatch.setenv("SWTEL_CRED_PROM_BAD_PASSWORD", "not-the-password")
        url = prom.url + "/api/v1/write"
        await add_output(bootstrapped, name="rw", kind="remote_write", url=url, auth="basic", credential="prom/rw",
                         tls_ca=prom.ca)
        await add_output(bootstrapped, name="bad", kind="remote_write", url=url, auth="basic",
                         credential="prom/bad", tls_ca=prom.ca)
        t0 = time.time_ns() - 60_000_000_000
        batches = telemetry(range(ROUNDS), t0)
        async with hub(bootstrapped, database_url) as (client, js):
            await running(client, "rw")
            await publish_all(js, batches)
            numeric = len(DEVICES) * ROUNDS * NUMERIC_PER_ROUND
            expected = await all_stored(database_url, numeric)
            v = await delivered(client, "rw", numeric + len(DEVICES) * ROUNDS * STATE_PER_ROUND)
            assert v["rejected"] == 0 and v["status"] == "ok", v
            expected.update(states(batches))
            await check_equal(prom, {"kind": "remote_write"}, expected, t0 / 1e9, t0 / 1e9 + ROUNDS + 1)
            bad = await refused(client, "bad")
            assert bad["samples"] == 0 and bad["rejected"] == 0, bad


async def test_influxdb_verifies_the_outputs_bearer_token(bootstrapped: str, database_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with tsdb.InfluxDB1(auth=("admin", "admin-pw"), jwt_secret="a-long-shared-secret-4f9a") as influx:
        influx.query("CREATE DATABASE swtel")
        influx.query("CREATE USER writer WITH PASSWORD 'unused-by-the-hub'")
        influx.query('GRANT WRITE ON "swtel" TO "writer"')
        # the credential's password is the token (docs/OUTPUTS.md)
        for ref, token in (("JWT", influx.token("writer")), ("FORGED", influx.token("writer", secret="another-secret"))):
            monkeypatch.setenv(f"SWTEL_CRED_INFLUX_{ref}_USERNAME", "writer")
            monkeypatch.setenv(f"SWTEL_CRED_INFLUX_{ref}_PASSWORD", token)
        for name, cred in (("jwt", "influx/jwt"), ("forged", "influx/forged")):
            await add_output(bootstrapped, name=name, kind="influx", url=influx.url, database="swtel", auth="bearer",
                             credential=cred)
        t0 = time.time_ns() - 60_000_000_000
        batches = telemetry(range(ROUNDS), t0)
        async with hub(bootstrapped, database_url) as (client, js):
            await running(client, "jwt")
            await publish_all(js, batches)
            per_round = len(DEVICES) * (NUMERIC_PER_ROUND + STATE_PER_ROUND)
            v = await delivered(client, "jwt", ROUNDS * per_round)
            assert v["rejected"] == 0 and v["status"] == "ok", v
            expected = await all_stored(database_url, len(DEVICES) * ROUNDS * NUMERIC_PER_ROUND)
            expected.update(states(batches))
            await check_equal(influx, {"kind": "influx", "database": "swtel"}, expected, t0 / 1e9, t0 / 1e9 + ROUNDS + 1)
            bad = await refused(client, "forged")
            assert bad["samples"] == 0 and bad["rejected"] == 0, bad
            assert "unused-by-the-hub" not in (await client.get("/api/outputs")).text
