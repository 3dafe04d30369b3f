"""WS /ws/live against a real nats-server and a real uvicorn: filtering, coalescing, the slow-client bound,
origin checks, and malformed input."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest
import websockets
from support.feed import FeedAgent, add_devices, batches
from support.live_app import live_view
from support.waits import eventually
from swtel.agent.sim.model import SimDevice
from swtel.hub.live.fanout import expand_frame
from swtel.shared import naming, wire
from websockets.exceptions import InvalidStatus

IN_OCTETS = "/interfaces/interface[name=Ethernet1]/state/counters/in-octets"


_PATHS: dict[int, dict[int, str]] = {}  # each connection's path table (see fanout.expand_frame)


async def frames_until(ws: Any, pred: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Read frames (paths resolved) until ``pred(frame)`` holds; return all read. Fails clearly on timeout."""
    seen: list[dict[str, Any]] = []
    paths = _PATHS.setdefault(id(ws), {})
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching frame within {timeout}s; got {len(seen)} frames: "
                                 f"{[sorted(f) for f in seen[-3:]]}")
        try:
            frame = expand_frame(json.loads(await asyncio.wait_for(ws.recv(), left)), paths)
        except TimeoutError:
            continue
        seen.append(frame)
        if pred(frame):
            return seen


@pytest.mark.asyncio
async def test_watch_filters_by_device_and_path_and_carries_rates(bootstrapped: str) -> None:
    async with live_view(bootstrapped) as hub:
        await add_devices(hub.nc, ["leaf-1.dc1", "leaf-2.dc1"])
        agent = await FeedAgent(hub.nc, "agent-a", interval_s=0.2).start()
        await agent.claim(["leaf-1.dc1", "leaf-2.dc1"])
        try:
            url = f"{hub.ws_url}/ws/live?device=leaf-1.dc1&paths=/interfaces/interface%5Bname%3DEthernet1%5D"
            async with websockets.connect(url) as ws:
                frames = await frames_until(ws, lambda f: (f.get("devices", {}).get("leaf-1.dc1", {})
                                                           .get(IN_OCTETS, [0, 0, None])[2] is not None))
                paths = {p for f in frames for d in ("devices", "snapshots") for dev in f.get(d, {}).values()
                         for p in (dev.get("series", dev) if d == "snapshots" else dev)}
                devices = {dev for f in frames for d in ("devices", "snapshots") for dev in f.get(d, {})}
                assert devices == {"leaf-1.dc1"}, devices
                assert paths and all(p.startswith("/interfaces/interface[name=Ethernet1]/") for p in paths), paths
                rate = frames[-1]["devices"]["leaf-1.dc1"][IN_OCTETS][2]
                sim = agent.sims["leaf-1.dc1"]
                assert rate == pytest.approx(sim._rates[0], rel=0.2)  # bytes/s of the simulated link

                # watch a second device at runtime, then drop the first
                await ws.send(json.dumps({"op": "watch", "devices": ["leaf-2.dc1"]}))
                await ws.send(json.dumps({"op": "unwatch", "devices": ["leaf-1.dc1"]}))
                await frames_until(ws, lambda f: "leaf-2.dc1" in f.get("devices", {}))
                later = await frames_until(ws, lambda f: "leaf-2.dc1" in f.get("devices", {}))
                assert "leaf-1.dc1" not in later[-1].get("devices", {})
                # the second watch had no path filter: it gets the system series too
                await frames_until(ws, lambda f: any(p.startswith("/system/") for p in
                                                     f.get("devices", {}).get("leaf-2.dc1", {})))
        finally:
            await agent.stop()


@pytest.mark.asyncio
async def test_bad_requests_are_answered_not_fatal(bootstrapped: str) -> None:
    async with live_view(bootstrapped, live_max_devices_per_client=2) as hub:
        async with websockets.connect(f"{hub.ws_url}/ws/live") as ws:
            for bad in ("not json", json.dumps([1]), json.dumps({"op": "explode"}),
                        json.dumps({"op": "watch", "devices": ["bad name!"]}),
                        json.dumps({"op": "watch", "devices": ["a", "b", "c"]}), b"\x00binary",
                        "x" * 70_000):
                await ws.send(bad)
            errors: list[str] = []

            def collect(frame: dict[str, Any]) -> bool:
                errors.extend(frame.get("errors", []))
                return len(errors) >= 7

            await frames_until(ws, collect)
            text = "\n".join(errors)
            assert "unknown op 'explode'" in text and "at most 2 devices" in text and "cannot be used" in text
            await ws.send(json.dumps({"op": "fleet"}))  # the connection still works
            await frames_until(ws, lambda f: "fleet" in f)


@pytest.mark.asyncio
async def test_bursts_are_coalesced_to_a_few_frames_per_second(bootstrapped: str) -> None:
    async with live_view(bootstrapped, live_frame_interval_s=0.25) as hub:
        await add_devices(hub.nc, ["sw1"])
        sim = SimDevice("sw1", platform="eos", interfaces=2)
        async with websockets.connect(f"{hub.ws_url}/ws/live?device=sw1") as ws:
            await frames_until(ws, lambda f: "snapshots" in f)
            start = time.monotonic()
            n = 400
            for seq in range(1, n + 1):  # 400 batches as fast as NATS takes them (~1 s or less)
                batch = batches(sim, "agent-a", 7, seq)[0]
                await hub.nc.publish(naming.telemetry_subject("sw1", "interfaces"), wire.encode(batch))
            await hub.nc.flush()
            last_seq_value = batch.samples[0].value
            frames = await frames_until(ws, lambda f: f.get("devices", {}).get("sw1", {}).get(
                batch.samples[0].path, [0, None])[1] == last_seq_value)
            elapsed = time.monotonic() - start
        assert hub.service.cache.stats["batches"] >= n
        # at most one frame per interval (plus the leading one), far fewer than the 400 batches
        assert len(frames) <= elapsed / 0.25 + 2, (len(frames), elapsed)
        stamps = [f["now_ms"] for f in frames]
        assert all(b - a >= 240 for a, b in zip(stamps, stamps[1:], strict=False)), stamps


def _raw_ws_that_never_reads(port: int, path: str) -> socket.socket:
    """A WebSocket handshake on a socket with a tiny receive buffer, then no reading at all."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 101"), "handshake failed"
    return s


@pytest.mark.asyncio
async def test_a_slow_client_is_bounded_then_disconnected(bootstrapped: str) -> None:
    async with live_view(bootstrapped, live_frame_interval_s=0.05, live_send_timeout_s=1.0) as hub:
        names = [f"big{i}" for i in range(8)]
        await add_devices(hub.nc, names)
        sims = [SimDevice(n, platform="eos", interfaces=48) for n in names]
        port = int(hub.url.rsplit(":", 1)[1])
        slow = await asyncio.to_thread(_raw_ws_that_never_reads, port, f"/ws/live?device={','.join(names)}&fleet=1")
        # a healthy client alongside keeps getting frames throughout
        async with websockets.connect(f"{hub.ws_url}/ws/live?device=big0") as ok:
            ok_frames: list[str | bytes] = []

            async def read_ok() -> None:
                async for frame in ok:
                    ok_frames.append(frame)

            reader = asyncio.get_running_loop().create_task(read_ok())
            await eventually(lambda: _ready(hub, 2), timeout=5, what="both clients registered")
            client = next(c for c in hub.service.fanout.clients if len(c.watched) == 8)
            series_per_device = 48 * 11 + 4
            most_pending = 0
            seq = 1
            deadline = time.monotonic() + 20
            while client in hub.service.fanout.clients:
                assert time.monotonic() < deadline, "the slow client was never disconnected"
                for sim in sims:
                    for b in batches(sim, "agent-a", 1, seq):
                        await hub.nc.publish(naming.telemetry_subject(sim.name, b.subscription), wire.encode(b))
                seq += 2
                await hub.nc.flush()
                most_pending = max(most_pending, sum(len(v) for v in client.pending.values()))
                await asyncio.sleep(0.02)  # publish pacing, not synchronisation
            reader.cancel()
        slow.close()
        stats = hub.service.fanout.stats
        assert stats["disconnected_slow"] == 1, stats
        # merged, not queued: what waits for the slow client never exceeds one value per watched series
        assert 0 < most_pending <= len(names) * series_per_device, most_pending
        assert client.merged > 0
        assert len(ok_frames) >= 5, f"the healthy client got only {len(ok_frames)} frames meanwhile"


async def _ready(hub: Any, n: int) -> bool:
    return len(hub.service.fanout.clients) >= n


@pytest.mark.asyncio
async def test_origins_are_checked(bootstrapped: str) -> None:
    async with live_view(bootstrapped, live_allowed_origins="https://noc.example") as hub:
        host = hub.url.removeprefix("http://")
        with pytest.raises(InvalidStatus) as err:
            async with websockets.connect(f"{hub.ws_url}/ws/live", origin="https://evil.example"):
                pass
        assert err.value.response.status_code == 403
        for origin in (f"http://{host}", "https://noc.example"):
            async with websockets.connect(f"{hub.ws_url}/ws/live?fleet=1", origin=origin) as ws:
                await frames_until(ws, lambda f: "fleet" in f)
        assert hub.service.fanout.stats["refused_origin"] == 1


@pytest.mark.asyncio
async def test_malformed_messages_are_counted_and_dropped(bootstrapped: str) -> None:
    async with live_view(bootstrapped) as hub:
        await add_devices(hub.nc, ["sw1"])
        sim = SimDevice("sw1", interfaces=1)
        for junk in (b"\x00garbage", b"", wire.encode(wire.TelemetryBatch("bad name!", "a", 1, 1, "s", []))):
            await hub.nc.publish("swtel.telemetry.sw1.interfaces", junk)
        newer = wire.TelemetryBatch("sw1", "a", 1, 1, "s", [], v=wire.TELEMETRY_VERSION + 1)
        await hub.nc.publish("swtel.telemetry.sw1.interfaces", wire.encode(newer))
        await hub.nc.publish("swtel.telemetry.sw1.interfaces", wire.encode(batches(sim, "a", 1, 1)[0]))
        await hub.nc.flush()

        async def counted() -> dict[str, int] | None:
            st = hub.service.cache.stats
            return st if st["batches"] == 1 and st["malformed"] == 3 and st["newer_version"] == 1 else None

        await eventually(counted, timeout=5, what="3 malformed, 1 newer-version and 1 good batch")


@pytest.mark.asyncio
async def test_authentication_is_honoured_when_the_hub_has_it(bootstrapped: str) -> None:
    async def authenticate(socket: Any) -> bool:  # what the hub passes once it has users
        return socket.cookies.get("session") == "valid"

    async with live_view(bootstrapped, authenticate=authenticate) as hub:
        with pytest.raises(InvalidStatus) as err:
            async with websockets.connect(f"{hub.ws_url}/ws/live"):
                pass
        assert err.value.response.status_code == 403
        async with websockets.connect(f"{hub.ws_url}/ws/live?fleet=1",
                                      additional_headers={"Cookie": "session=valid"}) as ws:
            await frames_until(ws, lambda f: "fleet" in f)
