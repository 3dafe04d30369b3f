"""The simulator's gNMI target, read with a plain gNMI client: every RPC, mode, encoding and fault."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest
from gnmi_pb import gnmi_pb2
from support.gnmisim import LOGIN, gnmi_client, gnmi_fleet, leaves, subscribe_request

from swtel.agent.collectors import gnmi_paths
from swtel.agent.sim import tlsgen
from swtel.agent.sim.gnmi_target import TlsFiles
from swtel.agent.sim.model import Faults, SimDevice

COUNTERS = "/interfaces/interface[name=eth1]/state/counters"
STREAM, ONCE, POLL = gnmi_pb2.SubscriptionList.STREAM, gnmi_pb2.SubscriptionList.ONCE, gnmi_pb2.SubscriptionList.POLL


async def read(call: grpc.aio.StreamStreamCall, timeout: float = 5.0) -> gnmi_pb2.SubscribeResponse:
    return await asyncio.wait_for(call.read(), timeout)


@pytest.mark.asyncio
async def test_capabilities_and_login() -> None:
    async with gnmi_fleet(SimDevice("sw1", interfaces=4)) as fleet, gnmi_client(fleet.ports[0]) as stub:
        caps = await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=5)
        assert caps.gNMI_version == "0.10.0"
        assert {gnmi_pb2.PROTO, gnmi_pb2.JSON_IETF} <= set(caps.supported_encodings)
        assert "openconfig-interfaces" in {m.name for m in caps.supported_models}
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=(("username", "admin"), ("password", "x")),
                                    timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.asyncio
async def test_get_proto_json_ietf_and_not_found() -> None:
    async with gnmi_fleet(SimDevice("sw1", interfaces=4)) as fleet, gnmi_client(fleet.ports[0]) as stub:
        resp = await stub.Get(gnmi_pb2.GetRequest(path=[gnmi_paths.to_proto(COUNTERS)], encoding=gnmi_pb2.PROTO),
                              metadata=LOGIN, timeout=5)
        got = leaves(resp.notification[0])
        assert len(got) == 10 and all(isinstance(v, int) for v in got.values())
        assert resp.notification[0].update[0].val.WhichOneof("value") == "uint_val"

        resp = await stub.Get(gnmi_pb2.GetRequest(path=[gnmi_paths.to_proto("/interfaces/interface[name=eth1]")],
                                                  encoding=gnmi_pb2.JSON_IETF), metadata=LOGIN, timeout=5)
        ups = {gnmi_paths.path_string((), u.path): u.val for u in resp.notification[0].update}
        container = json.loads(ups[COUNTERS].json_ietf_val)
        assert isinstance(container["openconfig-interfaces:in-octets"], str)  # RFC 7951: uint64 as a string
        assert json.loads(ups["/interfaces/interface[name=eth1]/state/oper-status"].json_ietf_val) in ("UP", "DOWN")

        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.Get(gnmi_pb2.GetRequest(path=[gnmi_paths.to_proto("/nothing/here")]), metadata=LOGIN, timeout=5)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.asyncio
async def test_stream_sample_counters_only_grow_at_the_interval() -> None:
    async with gnmi_fleet(SimDevice("sw1", interfaces=4)) as fleet, gnmi_client(fleet.ports[0]) as stub:
        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request("/interfaces/interface/state/counters", sample_s=0.2))
        first = await read(call)
        assert len(first.update.update) == 40
        assert (await read(call)).sync_response
        seen = [(first.update.timestamp, leaves(first.update))]
        for _ in range(3):
            r = await read(call)
            seen.append((r.update.timestamp, leaves(r.update)))
        call.cancel()
        mean_gap = (seen[-1][0] - seen[0][0]) / 1e9 / (len(seen) - 1)  # the schedule catches up after a delay
        assert 0.15 < mean_gap < 0.5, mean_gap
        for (_, a), (_, b) in zip(seen, seen[1:]):
            assert all(b[p] >= a[p] for p in a)
        busy = "/interfaces/interface[name=eth0]/state/counters/in-octets"
        assert seen[-1][1][busy] > seen[0][1][busy]


@pytest.mark.asyncio
async def test_on_change_sends_only_changed_leaves_and_heartbeats() -> None:
    async with gnmi_fleet(SimDevice("sw1", interfaces=2), check_s=0.1) as fleet, gnmi_client(fleet.ports[0]) as stub:
        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request(COUNTERS, sub_mode=gnmi_pb2.ON_CHANGE))
        assert len((await read(call)).update.update) == 10
        assert (await read(call)).sync_response
        change = leaves((await read(call)).update)
        call.cancel()
        assert f"{COUNTERS}/in-octets" in change
        assert f"{COUNTERS}/in-errors" not in change  # an idle counter does not change in 0.1 s

        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request("/system/state/hostname", sub_mode=gnmi_pb2.ON_CHANGE, heartbeat_s=0.3))
        await read(call), await read(call)
        started = time.monotonic()
        beat = leaves((await read(call)).update)
        call.cancel()
        assert beat == {"/system/state/hostname": "sw1"}
        assert 0.15 < time.monotonic() - started < 2


@pytest.mark.asyncio
async def test_target_defined_samples_counters_and_reports_status_on_change() -> None:
    async with gnmi_fleet(SimDevice("sw1", interfaces=2), check_s=0.1) as fleet, gnmi_client(fleet.ports[0]) as stub:
        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request("/interfaces/interface[name=eth0]/state", sub_mode=gnmi_pb2.TARGET_DEFINED,
                                           sample_s=0.2))
        initial = leaves((await read(call)).update)
        assert "/interfaces/interface[name=eth0]/state/oper-status" in initial
        assert (await read(call)).sync_response
        later = leaves((await read(call)).update)
        call.cancel()
        assert len(later) == 10 and all("/counters/" in p for p in later)


@pytest.mark.asyncio
async def test_once_poll_and_updates_only() -> None:
    async with gnmi_fleet(SimDevice("sw1", interfaces=2)) as fleet, gnmi_client(fleet.ports[0]) as stub:
        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request("/system", mode=ONCE))
        assert len((await read(call)).update.update) == 4
        assert (await read(call)).sync_response
        assert await read(call) is grpc.aio.EOF

        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request("/system/memory", mode=POLL))
        assert len((await read(call)).update.update) == 2
        assert (await read(call)).sync_response
        for _ in range(2):
            await call.write(gnmi_pb2.SubscribeRequest(poll=gnmi_pb2.Poll()))
            assert set(leaves((await read(call)).update)) == {"/system/memory/state/physical",
                                                               "/system/memory/state/utilized"}
            assert (await read(call)).sync_response
        call.cancel()

        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request("/system", sample_s=0.2, updates_only=True))
        assert (await read(call)).sync_response
        assert len((await read(call)).update.update) == 4
        call.cancel()


@pytest.mark.asyncio
async def test_faults_delay_hang_drop_garbage() -> None:
    devices = [SimDevice("slow", interfaces=1, faults=Faults(delay_s=0.5)),
               SimDevice("hung", interfaces=1, faults=Faults(hang=True)),
               SimDevice("drop", interfaces=1, faults=Faults(drop_stream_after_s=0.5)),
               SimDevice("junk", interfaces=1, faults=Faults(garbage=True)),
               SimDevice("locked", interfaces=1, faults=Faults(wrong_password=True))]
    async with gnmi_fleet(*devices) as fleet:
        async with gnmi_client(fleet.ports[0]) as stub:
            started = time.monotonic()
            await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=5)
            assert time.monotonic() - started >= 0.5
        async with gnmi_client(fleet.ports[1]) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=0.5)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        async with gnmi_client(fleet.ports[2]) as stub:
            call = stub.Subscribe(metadata=LOGIN)
            await call.write(subscribe_request("/system", sample_s=0.1))
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as e:
                while True:
                    await read(call)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert 0.3 < time.monotonic() - started < 3
        async with gnmi_client(fleet.ports[3]) as stub:
            # grpc.aio hands back None for a message it cannot deserialize
            assert await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=5) is None
            with pytest.raises(Exception):
                gnmi_pb2.SubscribeResponse.FromString(b"\x0a\xff\xff\xff\xff\x7f\x00garbage")
        async with gnmi_client(fleet.ports[4]) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.asyncio
async def test_counter_reset_fault() -> None:
    normal = SimDevice("sw1", interfaces=1)
    reset = SimDevice("sw1", interfaces=1, faults=Faults(counter_reset_at_s=100))
    for d in (normal, reset):
        d.started -= 101  # a day-old device whose counters were cleared at age 100 s
    async with gnmi_fleet(normal, reset) as fleet:
        values = []
        for port in fleet.ports:
            async with gnmi_client(port) as stub:
                r = await stub.Get(gnmi_pb2.GetRequest(path=[gnmi_paths.to_proto(
                    "/interfaces/interface[name=eth0]/state/counters/in-octets")], encoding=gnmi_pb2.PROTO),
                    metadata=LOGIN, timeout=5)
                values.append(r.notification[0].update[0].val.uint_val)
    assert values[1] < values[0] / 10


@pytest.mark.asyncio
async def test_tls_with_ca_and_required_client_certificate() -> None:
    m = tlsgen.generate()
    tls = TlsFiles(m.server_cert, m.server_key, client_ca=m.ca_cert)
    async with gnmi_fleet(SimDevice("sw1", interfaces=1), tls=tls) as fleet:
        good = grpc.ssl_channel_credentials(m.ca_cert, m.client_key, m.client_cert)
        async with gnmi_client(fleet.ports[0], good) as stub:
            caps = await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=5)
            assert caps.gNMI_version
        anonymous = grpc.ssl_channel_credentials(m.ca_cert)
        async with gnmi_client(fleet.ports[0], anonymous) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_hundreds_of_devices_in_one_process() -> None:
    devices = [SimDevice(f"sw{i}", interfaces=48) for i in range(300)]
    async with gnmi_fleet(*devices) as fleet:
        assert len(set(fleet.ports)) == 300
        for i in (0, 151, 299):
            async with gnmi_client(fleet.ports[i]) as stub:
                r = await stub.Get(gnmi_pb2.GetRequest(path=[gnmi_paths.to_proto("/system/state/hostname")],
                                                      encoding=gnmi_pb2.PROTO), metadata=LOGIN, timeout=5)
                assert r.notification[0].update[0].val.string_val == f"sw{i}"


@pytest.mark.asyncio
async def test_quirks_of_real_targets() -> None:
    """What independent targets do (issue 14), so the collector, demos and benches meet it here too."""
    quirky = Faults(poll_sync_once=True, encodings=("json_ietf",), ignore_paths=True)
    async with gnmi_fleet(SimDevice("q", interfaces=1, faults=quirky), SimDevice("deaf", interfaces=1,
                          faults=Faults(refuse_subscribe=True, empty_unknown=True)),
                          SimDevice("calm", interfaces=1, faults=Faults(no_heartbeat=True)), check_s=0.05) as fleet:
        async with gnmi_client(fleet.ports[0]) as stub:
            caps = await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=LOGIN, timeout=5)
            assert list(caps.supported_encodings) == [gnmi_pb2.JSON_IETF]
            call = stub.Subscribe(metadata=LOGIN)
            await call.write(subscribe_request("/system/memory", mode=POLL))
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await read(call)
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED  # PROTO is not offered

            call = stub.Subscribe(metadata=LOGIN)
            await call.write(subscribe_request("/system/memory", mode=POLL, encoding=gnmi_pb2.JSON_IETF))
            first = await read(call)
            assert any(p.startswith("/interfaces/") for p in leaves(first.update))  # every leaf, whatever the path
            assert (await read(call)).sync_response  # after the first round...
            await call.write(gnmi_pb2.SubscribeRequest(poll=gnmi_pb2.Poll()))
            assert (await read(call)).HasField("update")
            await call.write(gnmi_pb2.SubscribeRequest(poll=gnmi_pb2.Poll()))
            assert (await read(call)).HasField("update")  # ...but not after the later ones
            call.cancel()
        async with gnmi_client(fleet.ports[2]) as stub:
            call = stub.Subscribe(metadata=LOGIN)  # ON_CHANGE asking for a heartbeat every 0.1 s gets none
            await call.write(subscribe_request("/system/memory/state/physical", sub_mode=gnmi_pb2.ON_CHANGE,
                                               heartbeat_s=0.1))
            assert (await read(call)).HasField("update") and (await read(call)).sync_response
            with pytest.raises(TimeoutError):
                await read(call, timeout=0.5)  # physical memory never changes: five heartbeats due, none sent
            call.cancel()
        async with gnmi_client(fleet.ports[1]) as stub:
            call = stub.Subscribe(metadata=LOGIN)
            await call.write(subscribe_request("/system/memory"))
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await read(call)
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    fleet.devices[1].faults.refuse_subscribe = False
    async with gnmi_fleet(fleet.devices[1]) as again, gnmi_client(again.ports[0]) as stub:
        call = stub.Subscribe(metadata=LOGIN)
        await call.write(subscribe_request("/vendor/thing", mode=ONCE))
        empty = await read(call)
        assert empty.HasField("update") and not empty.update.update  # an empty notification, not NOT_FOUND
        assert (await read(call)).sync_response
