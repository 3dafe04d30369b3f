"""``swtel output …`` against a real nats-server: stored in KV with a credential reference only, a durable
consumer made at add, pause/resume keep it, remove deletes both; user mistakes are one line and exit 2."""

from __future__ import annotations

import asyncio
import json

import nats

from support.natsserver import NatsServer
from swtel.shared import naming


def _consumers(url: str) -> list[str]:
    async def go() -> list[str]:
        nc = await nats.connect(url)
        try:
            return sorted(c.name for c in await nc.jetstream().consumers_info(naming.STREAM_TELEMETRY))
        finally:
            await nc.close()

    return asyncio.run(go())


def _raw(url: str, key: str) -> bytes:
    async def go() -> bytes:
        nc = await nats.connect(url)
        try:
            return (await (await nc.jetstream().key_value(naming.BUCKET_OUTPUTS)).get(key)).value
        finally:
            await nc.close()

    return asyncio.run(go())


def test_output_lifecycle(swtel, nats_server: NatsServer) -> None:
    url = nats_server.url
    assert swtel("--nats", url, "nats", "init").code == 0
    r = swtel("--nats", url, "output", "add", "prom", "--kind", "remote_write", "--url",
              "https://prom.example.net/api/v1/write", "--auth", "bearer", "--credential", "prom/rw",
              "--device-tag", "site", "--rule", "/system/cpus/*=drop")
    assert r.code == 0, r.err
    assert "prom" in r.out and "remote_write" in r.out
    r = swtel("--nats", url, "output", "add", "influx", "--kind", "influx", "--url", "http://influx:8086",
              "--database", "telemetry")
    assert r.code == 0, r.err
    assert swtel("--nats", url, "output", "add", "scrape", "--kind", "scrape").code == 0
    assert _consumers(url) == ["swtel-out-influx", "swtel-out-prom"]  # scrape needs no position

    raw = json.loads(_raw(url, "prom"))
    assert raw["credential"] == "prom/rw" and raw["auth"] == "bearer"  # a reference, never a secret

    listed = swtel("--nats", url, "output", "list", "--json")
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)
    assert [row["name"] for row in rows] == ["influx", "prom", "scrape"]
    assert rows[1]["lag_messages"] == 0 and rows[1]["device_tags"] == ["site"] and rows[2]["lag_messages"] is None
    table = swtel("--nats", url, "output", "list")
    assert "https://prom.example.net/api/v1/write" in table.out and "active" in table.out

    assert swtel("--nats", url, "output", "pause", "prom").code == 0
    shown = json.loads(swtel("--nats", url, "output", "show", "prom", "--json").out)
    assert shown["paused"] is True and shown["consumer"] == "swtel-out-prom"
    assert "swtel-out-prom" in _consumers(url)  # the position is kept while paused
    assert swtel("--nats", url, "output", "resume", "prom").code == 0
    assert json.loads(swtel("--nats", url, "output", "show", "prom", "--json").out)["paused"] is False

    dup = swtel("--nats", url, "output", "add", "prom", "--kind", "scrape")
    assert dup.code == 2 and "already exists" in dup.err and "Traceback" not in dup.err
    assert swtel("--nats", url, "output", "remove", "prom").code == 0
    assert _consumers(url) == ["swtel-out-influx"]
    missing = swtel("--nats", url, "output", "show", "prom")
    assert missing.code == 2 and "does not exist" in missing.err


def test_user_mistakes_are_one_line_exit_2(swtel, nats_server: NatsServer) -> None:
    url = nats_server.url
    no_bucket = swtel("--nats", url, "output", "list")
    assert no_bucket.code == 2 and "swtel nats init" in no_bucket.err
    assert swtel("--nats", url, "nats", "init").code == 0
    for args, msg in [
        (["--kind", "remote_write", "--url", "http://user:pw@prom/api/v1/write"], "no credentials in the URL"),
        (["--kind", "influx", "--url", "http://influx:8086"], "--database"),
        (["--kind", "remote_write", "--url", "http://p/", "--auth", "basic"], "--credential"),
        (["--kind", "graphite", "--url", "http://p/"], "unknown"),
    ]:
        r = swtel("--nats", url, "output", "add", "x", *args)
        assert r.code == 2 and msg in r.err and len(r.err.strip().splitlines()) == 1, (args, r.err)
    assert json.loads(swtel("--nats", url, "output", "list", "--json").out) == []
