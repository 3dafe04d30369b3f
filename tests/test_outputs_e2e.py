"""Outputs end to end: simulator telemetry → NATS → a real hub → real Prometheus, VictoriaMetrics and InfluxDB
(Debian's packages, started here on free loopback ports). What each server returns through its own query
API equals what the hub stored in PostgreSQL; a destination that is down for a while loses nothing; an
output that falls behind the stream's retention reports exactly how much it missed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import pytest
from litestar.testing import AsyncTestClient

from support import tsdb
from support.outputs import by_metric, count, output_view, publish_all, sim_round, states, stored
from support.telemetry import hub_settings, migrate
from support.waits import eventually
from swtel.agent.sim.model import SimDevice
from swtel.hub.app import create_app
from swtel.hub.outputs.model import OutputStore, make_output
from swtel.shared import naming

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
DEVICES = ("leaf-01.dc1", "leaf-02.dc1")
ROUNDS = 5
INTERFACES = 4
NUMERIC_PER_ROUND = INTERFACES * 10 + 4  # ten counters per interface, CPU, memory ×2, temperature
STATE_PER_ROUND = INTERFACES


def telemetry(rounds: range, t0: int) -> list[Any]:
    out = []
    for d in DEVICES:
        sim = SimDevice(d, interfaces=INTERFACES)
        for k in rounds:
            out += sim_round(sim, k, t0, seq=2 * k + 1, interfaces=INTERFACES)
    return out


@asynccontextmanager
async def hub(bootstrapped: str, database_url: str) -> AsyncIterator[tuple[AsyncTestClient[Any], Any]]:
    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url), auth=False)
    nc = await nats.connect(bootstrapped)
    try:
        async with AsyncTestClient(app) as client:
            yield client, nc.jetstream()
    finally:
        await nc.close()


async def view(client: AsyncTestClient[Any], name: str) -> dict[str, Any] | None:
    r = await client.get("/api/outputs")
    assert r.status_code == 200, r.text
    return output_view(r.json(), name)


async def delivered(client: AsyncTestClient[Any], name: str, samples: int, timeout: float = 60) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        v = await view(client, name)
        return v if v and v["samples"] >= samples and v["lag_messages"] == 0 else None

    return await eventually(probe, timeout=timeout, what=f"output {name} to deliver {samples} samples")


async def running(client: AsyncTestClient[Any], name: str) -> None:
    async def probe() -> bool:
        v = await view(client, name)
        return bool(v and v["running"])

    await eventually(probe, timeout=20, what=f"output {name} to run on the hub")


async def add_output(nats_url: str, **kw: Any) -> None:
    nc = await nats.connect(nats_url)
    try:
        await (await OutputStore.open(nc.jetstream())).add(make_output(**kw))
    finally:
        await nc.close()


async def all_stored(database_url: str, n: int) -> Any:
    async def probe() -> Any:
        s = await stored(database_url)
        return s if count(s) >= n else None

    return await eventually(probe, timeout=60, what=f"{n} points stored by the hub")


def prom_view(series: dict[Any, dict[int, float]], metric: str) -> dict[Any, dict[int, float]]:
    return by_metric(series, metric)


CASES = {
    "prometheus-remote-write": dict(kind="remote_write", server=lambda: tsdb.Prometheus(basic_auth=("swtel", "s3cret-rw")),
                                    url="/api/v1/write", auth="basic", credential="prom/rw"),
    "victoriametrics-remote-write": dict(kind="remote_write", server=tsdb.VictoriaMetrics, url="/api/v1/write"),
    "influxdb1-line-protocol": dict(kind="influx", server=lambda: tsdb.InfluxDB1(auth=("swtel", "s3cret-influx")),
                                    url="", auth="basic", credential="influx", influx_version=1, database="swtel"),
    "victoriametrics-influx-v2": dict(kind="influx", server=tsdb.VictoriaMetrics, url="", influx_version=2,
                                      database="swtel", org="swtel"),
}


async def read_back(server: Any, case: dict[str, Any], metric: str, start_s: float, end_s: float) -> dict[Any, dict[int, float]]:
    if isinstance(server, tsdb.InfluxDB1):
        return await server.series(metric, case["database"])
    if case["kind"] == "influx":  # VictoriaMetrics names line-protocol data <measurement>_<field>
        got = await server.series(f"{metric}_value", start_s, end_s)
        return {tuple((k, v) for k, v in labels if k != "db"): pts for labels, pts in got.items()}
    return await server.series(metric, start_s, end_s)


async def check_equal(server: Any, case: dict[str, Any], expected: Any, start_s: float, end_s: float) -> None:
    metrics = sorted({name for name, _ in expected})
    assert "interface_in_octets_total" in metrics and "interface_oper_status" in metrics
    for metric in metrics:
        want = by_metric(expected, metric)

        async def probe() -> Any:
            got = await read_back(server, case, metric, start_s, end_s)
            return got if got == want else None

        try:
            await eventually(probe, timeout=20, what=f"{metric} read back equal to what the hub stored", interval=0.5)
        except AssertionError:
            got = await read_back(server, case, metric, start_s, end_s)
            assert got == want, f"{metric}: destination differs from the hub's store"


def env_for(case: dict[str, Any], server: Any) -> dict[str, str]:
    if case.get("auth") != "basic":
        return {}
    user, password = server.auth
    prefix = "SWTEL_CRED_" + "".join(c if c.isalnum() else "_" for c in case["credential"]).upper()
    return {f"{prefix}_USERNAME": user, f"{prefix}_PASSWORD": password}


@pytest.mark.parametrize("name", list(CASES))
async def test_values_read_back_equal_what_the_hub_stored(name: str, bootstrapped: str, database_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    server = case["server"]()
    with server:
        for k, v in env_for(case, server).items():  # the secret lives on the hub host, never in KV
            monkeypatch.setenv(k, v)
        if isinstance(server, tsdb.InfluxDB1):
            server.query("CREATE DATABASE swtel")
        extra = {k: case[k] for k in ("auth", "credential", "influx_version", "database", "org") if k in case}
        await add_output(bootstrapped, name="out", kind=case["kind"], url=server.url + case["url"], **extra)
        t0 = time.time_ns() - 60_000_000_000
        batches = telemetry(range(ROUNDS), t0)
        async with hub(bootstrapped, database_url) as (client, js):
            await running(client, "out")
            await publish_all(js, batches)
            numeric = len(DEVICES) * ROUNDS * NUMERIC_PER_ROUND
            expected = await all_stored(database_url, numeric)
            v = await delivered(client, "out", numeric + len(DEVICES) * ROUNDS * STATE_PER_ROUND)
            assert v["rejected"] == 0 and v["missed"] == 0 and v["status"] == "ok", v
            expected.update(states(batches))
            await check_equal(server, case, expected, t0 / 1e9, t0 / 1e9 + ROUNDS + 1)
            metrics = (await client.get("/metrics")).text
            assert 'swtel_output_samples_total{output="out"' in metrics
            assert 'swtel_output_lag_messages{output="out",kind="%s"} 0' % case["kind"] in metrics
            health = (await client.get("/api/health")).json()
            assert health["outputs"][0]["name"] == "out" and health["outputs"][0]["status"] == "ok", health


@pytest.mark.parametrize("name", ["prometheus-remote-write", "influxdb1-line-protocol"])
async def test_a_destination_down_for_a_while_then_back_misses_nothing(name: str, bootstrapped: str, database_url: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    server = case["server"]()
    with server:
        for k, v in env_for(case, server).items():
            monkeypatch.setenv(k, v)
        if isinstance(server, tsdb.InfluxDB1):
            server.query("CREATE DATABASE swtel")
        extra = {k: case[k] for k in ("auth", "credential", "influx_version", "database", "org") if k in case}
        await add_output(bootstrapped, name="out", kind=case["kind"], url=server.url + case["url"], **extra)
        t0 = time.time_ns() - 60_000_000_000
        first, second = telemetry(range(0, 3), t0), telemetry(range(3, 8), t0)
        per_round = len(DEVICES) * (NUMERIC_PER_ROUND + STATE_PER_ROUND)
        async with hub(bootstrapped, database_url) as (client, js):
            await running(client, "out")
            await publish_all(js, first)
            await delivered(client, "out", 3 * per_round)
            server.stop()  # the destination goes away; telemetry keeps coming

            await publish_all(js, second)

            async def failing() -> dict[str, Any] | None:
                h = (await client.get("/api/health")).json()
                o = h["outputs"][0]
                return h if o["status"] == "retrying" and o["error"] and o["lag_messages"] > 0 else None

            h = await eventually(failing, timeout=30, what="the output to report the destination down in /api/health")
            assert h["status"] == "degraded"
            metrics = (await client.get("/metrics")).text
            assert 'swtel_output_error{output="out",kind="%s"} 1' % case["kind"] in metrics
            await all_stored(database_url, 8 * len(DEVICES) * NUMERIC_PER_ROUND)  # storage did not wait for it
            before = (await view(client, "out"))["retries"]  # type: ignore[index]
            await eventually(lambda: _more_retries(client, before), timeout=30, what="a retry with backoff")

            server.start()  # back, same data directory
            v = await delivered(client, "out", 8 * per_round, timeout=90)
            assert v["missed"] == 0 and v["rejected"] == 0, v
            assert any(e["kind"] == "recovered" for e in v["events"]), v["events"]
            expected = await stored(database_url)
            expected.update(states(first + second))
            await check_equal(server, case, expected, t0 / 1e9, t0 / 1e9 + 9)


async def _more_retries(client: AsyncTestClient[Any], before: int) -> bool:
    v = await view(client, "out")
    return bool(v and v["retries"] > before)


async def test_falling_behind_retention_reports_exactly_what_was_missed(bootstrapped: str, database_url: str) -> None:
    with tsdb.InfluxDB1() as server:
        server.query("CREATE DATABASE swtel")
        nc = await nats.connect(bootstrapped)
        js = nc.jetstream()
        t0 = time.time_ns() - 60_000_000_000
        try:
            await publish_all(js, telemetry(range(0, 2), t0))  # before the output exists: not its business
            await add_output(bootstrapped, name="out", kind="influx", url=server.url, database="swtel")
            store = await OutputStore.open(js)
            await store.set_paused("out", True)
            info = await js.stream_info(naming.STREAM_TELEMETRY)
            cfg = info.config
            cfg.max_msgs = 10  # a tiny retention: what the paused output has not read goes
            await js.update_stream(cfg)
            await publish_all(js, telemetry(range(2, 12), t0))  # 40 messages; the stream keeps the last 10
            first = (await js.stream_info(naming.STREAM_TELEMETRY)).state.first_seq
            created_at = 2 * 2 * len(DEVICES)  # two rounds of two batches: the stream's last sequence when the output was added
            async with hub(bootstrapped, database_url) as (client, _):
                await store.set_paused("out", False)
                await running(client, "out")

                async def missed() -> dict[str, Any] | None:
                    v = await view(client, "out")
                    return v if v and v["missed"] and v["messages"] >= 10 else None

                v = await eventually(missed, timeout=30, what="the output to count what it missed")
                assert v["missed"] == first - created_at - 1 == 30, v
                ev = [e for e in v["events"] if e["kind"] == "missed"]
                assert ev and ev[0]["count"] == 30 and ev[0]["first_seq"] == created_at + 1, ev
                metrics = (await client.get("/metrics")).text
                assert 'swtel_output_missed_messages_total{output="out",kind="influx"} 30' in metrics
                assert (await client.get("/api/health")).json()["outputs"][0]["missed"] == 30
        finally:
            await nc.close()


async def test_prometheus_scrapes_the_newest_value_per_series_from_a_hub_process(
        bootstrapped: str, database_url: str, tmp_path: Any) -> None:
    from support.hubs import health, hub_proc
    from support.ports import free_port
    from support.telemetry import api_token

    await migrate(database_url)
    headers = await api_token(database_url)  # the scrape endpoint needs a token like the rest of the API
    token = headers["Authorization"].removeprefix("Bearer ")
    await add_output(bootstrapped, name="scr", kind="scrape")
    port = free_port()
    proc = hub_proc(bootstrapped, database_url, port, tmp_path / "hub.log")
    nc = await nats.connect(bootstrapped)
    try:
        await eventually(lambda: health(port), timeout=30, what="the hub process to answer")
        t0 = time.time_ns() - 30_000_000_000
        batches = telemetry(range(ROUNDS), t0)
        await publish_all(nc.jetstream(), batches)
        expected = await all_stored(database_url, len(DEVICES) * ROUNDS * NUMERIC_PER_ROUND)
        expected.update(states(batches))
        newest = {k: max(pts.items()) for k, pts in expected.items()}  # (ms, value) of the last sample
        with tsdb.Prometheus(scrape=(f"127.0.0.1:{port}", "/metrics/devices/scr", token)) as prom:
            for metric in ("interface_in_octets_total", "interface_oper_status", "system_memory_utilized"):
                want = {labels: dict([newest[(name, labels)]]) for (name, labels) in newest if name == metric}

                async def probe() -> Any:
                    got = await prom.series(metric, t0 / 1e9, time.time())
                    return got if got == want else None

                try:
                    await eventually(probe, timeout=30, what=f"Prometheus to scrape {metric}", interval=0.5)
                except AssertionError:
                    got = await prom.series(metric, t0 / 1e9, time.time())
                    assert got == want, f"{metric}: scraped values differ from the newest stored"
    finally:
        await nc.close()
        proc.terminate()
        proc.wait(20)


async def test_remote_write_over_tls_verifies_the_destination_with_the_given_ca(bootstrapped: str,
                                                                               database_url: str) -> None:
    with tsdb.VictoriaMetrics(tls=True) as vm:
        await add_output(bootstrapped, name="tls", kind="remote_write", url=vm.url + "/api/v1/write", tls_ca=vm.ca)
        await add_output(bootstrapped, name="noca", kind="remote_write", url=vm.url + "/api/v1/write")
        t0 = time.time_ns() - 60_000_000_000
        batches = telemetry(range(2), t0)
        async with hub(bootstrapped, database_url) as (client, js):
            await running(client, "tls")
            await publish_all(js, batches)
            numeric = len(DEVICES) * 2 * NUMERIC_PER_ROUND
            expected = await all_stored(database_url, numeric)
            await delivered(client, "tls", numeric + len(DEVICES) * 2 * STATE_PER_ROUND)
            got = await vm.series("interface_in_octets_total", t0 / 1e9, t0 / 1e9 + 3)
            assert got == by_metric(expected, "interface_in_octets_total")

            async def refused() -> dict[str, Any] | None:  # the system store does not know the private CA
                v = await view(client, "noca")
                return v if (v and v["status"] == "retrying" and "CERTIFICATE_VERIFY_FAILED" in v["error"]
                             and v["lag_messages"] > 0) else None  # the lag is read every 2 s

            v = await eventually(refused, timeout=30, what="the output without the CA to refuse the server")
            assert v["samples"] == 0 and v["lag_messages"] > 0, v  # held, not dropped
            one = await client.get("/api/outputs/tls")
            assert one.status_code == 200 and one.json()["definition"]["tls_ca"] == vm.ca
            assert (await client.get("/api/outputs/nope")).status_code == 404
            none = await client.get("/metrics/devices")
            assert none.status_code == 404 and "no exactly one scrape output" in none.json()["detail"]


async def test_a_refused_credential_holds_the_data_until_it_is_fixed(bootstrapped: str, database_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """401 is the destination refusing everybody, not this data: held and retried, shown as an error; after
    the credential is fixed (and the output resumed) everything arrives."""
    with tsdb.InfluxDB1(auth=("swtel", "right-password")) as influx:
        influx.query("CREATE DATABASE swtel")
        monkeypatch.setenv("SWTEL_CRED_INFLUX_USERNAME", "swtel")
        monkeypatch.setenv("SWTEL_CRED_INFLUX_PASSWORD", "wrong-password")
        await add_output(bootstrapped, name="out", kind="influx", url=influx.url, database="swtel", auth="basic",
                         credential="influx")
        t0 = time.time_ns() - 60_000_000_000
        batches = telemetry(range(3), t0)
        async with hub(bootstrapped, database_url) as (client, js):
            await running(client, "out")
            await publish_all(js, batches)

            async def refused() -> dict[str, Any] | None:
                v = await view(client, "out")
                return v if v and v["status"] == "error" and "401" in v["error"] and v["lag_messages"] > 0 else None

            v = await eventually(refused, timeout=30, what="the output to show the refused credential")
            assert v["samples"] == 0 and v["rejected"] == 0 and v["lag_messages"] > 0, v
            assert "password" not in (await client.get("/api/outputs")).text  # no secret in the API
            monkeypatch.setenv("SWTEL_CRED_INFLUX_PASSWORD", "right-password")
            nc = await nats.connect(bootstrapped)
            try:  # pause and resume: the runner starts afresh and reads the credential again
                store = await OutputStore.open(nc.jetstream())
                await store.set_paused("out", True)
                await eventually(lambda: _stopped(client), timeout=20, what="the output to pause")
                await store.set_paused("out", False)
            finally:
                await nc.close()
            per_round = len(DEVICES) * (NUMERIC_PER_ROUND + STATE_PER_ROUND)
            v = await delivered(client, "out", 3 * per_round)
            assert v["rejected"] == 0 and v["missed"] == 0, v
            expected = await all_stored(database_url, 3 * len(DEVICES) * NUMERIC_PER_ROUND)  # ingest may be behind
            expected.update(states(batches))
            await check_equal(influx, {"kind": "influx", "database": "swtel"}, expected, t0 / 1e9, t0 / 1e9 + 4)


async def _stopped(client: AsyncTestClient[Any]) -> bool:
    v = await view(client, "out")
    return bool(v and not v["running"] and v["status"] == "paused")


async def test_messages_taken_by_a_runner_that_stopped_are_not_counted_missed(bootstrapped: str,
                                                                             database_url: str) -> None:
    """A stopping runner's last pull can still be answered after its successor started: those messages are
    first delivered to the old subscription and come back later. They are a gap in first deliveries but
    still in the stream: not missed, and delivered."""
    with tsdb.InfluxDB1() as influx:
        influx.query("CREATE DATABASE swtel")
        await add_output(bootstrapped, name="out", kind="influx", url=influx.url, database="swtel")
        nc = await nats.connect(bootstrapped)
        js = nc.jetstream()
        try:
            store = await OutputStore.open(js)
            await store.set_paused("out", True)
            old = await js.pull_subscribe_bind(durable="swtel-out-out", stream=naming.STREAM_TELEMETRY)
            taken = asyncio.ensure_future(old.fetch(8, timeout=20))  # the old runner's pending pull
            await asyncio.sleep(0)  # let it send its request first
            await nc.flush()
            t0 = time.time_ns() - 60_000_000_000
            batches = telemetry(range(5), t0)
            async with hub(bootstrapped, database_url) as (client, pub):
                await store.set_paused("out", False)
                await running(client, "out")

                async def both_pulling() -> bool:  # the old pull and the runner's are both waiting
                    return (await js.consumer_info(naming.STREAM_TELEMETRY, "swtel-out-out")).num_waiting >= 2

                await eventually(both_pulling, timeout=20, what="the runner to pull beside the old subscription")
                await publish_all(pub, batches)
                stale = await taken
                assert stale and stale[0].metadata.sequence.stream == 1  # a gap in the runner's first deliveries
                for m in stale:  # the old runner hands them back
                    await m.nak()
                per_round = len(DEVICES) * (NUMERIC_PER_ROUND + STATE_PER_ROUND)
                v = await delivered(client, "out", 5 * per_round)
                assert v["missed"] == 0 and not [e for e in v["events"] if e["kind"] == "missed"], v
        finally:
            await nc.close()
