"""The gNMI collector against the simulator, publishing through the real publisher to a real nats-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from support.gnmisim import gnmi_fleet
from support.waits import eventually

from swtel.agent import collect
from swtel.agent.collectors import gnmi
from swtel.agent.credentials import Credentials
from swtel.agent.sim import tlsgen
from swtel.agent.sim.gnmi_target import TlsFiles
from swtel.agent.sim.model import Faults, SimDevice
from swtel.shared import inventory, naming, settings, wire


class Agent:
    """A Collection (what `swtel agent run` wires up) plus a core subscription recording what it publishes."""

    def __init__(self, nc: nats.NATS, secrets: Path) -> None:
        self.nc = nc
        s = settings.load({"secrets_file": str(secrets)}, env={})
        self.collection = collect.Collection(nc, s, "agent-t", credentials=Credentials(str(secrets), env={}))
        self.batches: list[wire.TelemetryBatch] = []
        self.subjects: list[str] = []
        self.events: list[wire.Event] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def listen(self) -> None:
        async def on_msg(msg: Any) -> None:
            m = wire.message_decoder.decode(msg.data)
            if isinstance(m, wire.TelemetryBatch):
                self.batches.append(m)
                self.subjects.append(msg.subject)
            elif isinstance(m, wire.Event):  # discovery's DeviceFacts are tested in test_discovery.py
                self.events.append(m)

        await self.nc.subscribe("swtel.>", cb=on_msg)

    def start(self, device: wire.Device, token: int = 7) -> None:
        self.tasks[device.name] = asyncio.create_task(self.collection.slot(device, token))

    async def stop(self) -> None:
        for t in self.tasks.values():
            t.cancel()
        await asyncio.wait_for(asyncio.gather(*self.tasks.values(), return_exceptions=True), 5)

    def kinds(self, device: str) -> list[str]:
        return [e.kind for e in self.events if e.device == device]

    def stats(self, device: str) -> dict[str, Any]:
        return self.collection.device_stats().get(device, {})

    def of(self, device: str) -> list[wire.TelemetryBatch]:
        return [b for b in self.batches if b.device == device]


@pytest_asyncio.fixture
async def agent(bootstrapped: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Agent]:
    monkeypatch.setattr(gnmi, "RPC_TIMEOUT_S", 1.0)
    monkeypatch.setattr(gnmi, "WATCHDOG_GRACE_S", 0.5)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[sim]\nusername = "admin"\npassword = "admin"\n')
    nc = await nats.connect(bootstrapped)
    a = Agent(nc, secrets)
    await a.listen()
    try:
        yield a
    finally:
        await a.stop()
        await nc.close()


def device(name: str, port: int, **kw: Any) -> wire.Device:
    kw.setdefault("interval", "500ms")
    kw.setdefault("credential", "sim")
    return inventory.make_device(name, "127.0.0.1", "gnmi", port=port, **kw)


@pytest.mark.asyncio
async def test_collects_and_publishes_batches_with_token_and_sequence(agent: Agent) -> None:
    async with gnmi_fleet(SimDevice("leaf-1.dc1", interfaces=4)) as fleet:
        agent.start(device("leaf-1.dc1", fleet.ports[0]), token=42)
        await eventually(lambda: _async(len(agent.of("leaf-1.dc1")) >= 6), timeout=10, what="six batches")
        stats = agent.stats("leaf-1.dc1")
    batches = agent.of("leaf-1.dc1")
    assert {b.token for b in batches} == {42} and {b.agent for b in batches} == {"agent-t"}
    assert sorted(b.seq for b in batches) == list(range(1, len(batches) + 1))
    inter = [b for b in batches if b.subscription == "interfaces"]
    assert len(wire.samples_of(inter[0])) == 4 * 11  # ten counters and oper-status per interface
    paths = {s.path: s.value for s in wire.samples_of(inter[0])}
    assert isinstance(paths["/interfaces/interface[name=eth0]/state/counters/in-octets"], int)
    assert paths["/interfaces/interface[name=eth0]/state/oper-status"] in ("UP", "DOWN")
    system = {s.path for b in batches if b.subscription == "system" for s in wire.samples_of(b)}
    assert "/components/component[name=Chassis]/state/temperature/instant" in system
    assert naming.telemetry_subject("leaf-1.dc1", "interfaces") in agent.subjects
    assert agent.kinds("leaf-1.dc1")[0] == "session_up"
    assert stats["status"] == "collecting" and stats["token"] == 42 and stats["samples"] >= 4 * 11
    assert stats["last_success_ns"] > 0 and stats["errors"] == 0


async def _async(value: Any) -> Any:
    return value


@pytest.mark.asyncio
async def test_a_session_keeps_nothing_of_its_capabilities_answer(agent: Agent) -> None:
    """Issue 20: the Capabilities answer (hundreds of models on real targets, tens of kB of upb) is read
    once at the session's start and not kept for the session's life."""
    async with gnmi_fleet(SimDevice("leaf-1", interfaces=2)) as fleet:
        agent.start(device("leaf-1", fleet.ports[0]))
        await eventually(lambda: _async(len(agent.of("leaf-1")) >= 2), timeout=10, what="two batches")
        coro: Any = agent.tasks["leaf-1"].get_coro()
        session_frame = None
        while coro is not None and hasattr(coro, "cr_frame"):  # slot → gnmi.run → GnmiSession.run
            local = coro.cr_frame.f_locals
            if coro.cr_frame.f_code.co_name == "run" and isinstance(local.get("self"), gnmi.GnmiSession):
                session_frame = coro.cr_frame
            coro = coro.cr_await
        assert session_frame is not None, "GnmiSession.run not found in the slot's await chain"
        assert "caps" not in session_frame.f_locals, "the session holds its Capabilities answer"
        assert agent.kinds("leaf-1")[0] == "session_up"


@pytest.mark.asyncio
async def test_each_fault_gives_one_clear_status_and_spares_the_healthy_device(agent: Agent) -> None:
    devices = [SimDevice("good", interfaces=2),
               SimDevice("locked", interfaces=2, faults=Faults(wrong_password=True)),
               SimDevice("hung", interfaces=2, faults=Faults(hang=True)),
               SimDevice("junk", interfaces=2, faults=Faults(garbage=True))]
    async with gnmi_fleet(*devices) as fleet:
        for d, port in zip(devices, fleet.ports):
            agent.start(device(d.name, port))
        agent.start(device("gone", 1))  # nothing listens on port 1
        want = {"locked": "auth_failed", "hung": "timeout", "junk": "error", "gone": "unreachable"}

        async def settled() -> dict[str, str]:
            now = {n: agent.stats(n).get("status") for n in want}
            return now if now == want else {}

        await eventually(settled, timeout=15, what=f"statuses {want}")
        good_before = len(agent.of("good"))
        await eventually(lambda: _async(len(agent.of("good")) >= good_before + 4), timeout=10,
                         what="the healthy device still publishing")
        assert agent.stats("good")["status"] == "collecting"
        assert "malformed" in agent.stats("junk")["last_error"]
    assert "auth_failed" in agent.kinds("locked") and "timeout" in agent.kinds("hung")
    assert not any(agent.of(n) for n in want)
    # a repeated identical failure is reported once, not once per retry
    assert agent.kinds("locked").count("auth_failed") == 1


@pytest.mark.asyncio
async def test_an_update_that_is_no_update_is_a_malformed_message(agent: Agent) -> None:
    """Updates are parsed at decode, not with the response (the raw view): one that is no gnmi.Update gives
    the status and message a response grpc cannot parse gives, not an unexpected DecodeError."""
    import grpc
    from gnmi_pb import gnmi_pb2

    notification = gnmi_pb2.Notification(timestamp=1).SerializeToString() + b"\x22\x02\x0a\xff"  # update(4):
    bad = b"\x0a" + bytes([len(notification)]) + notification  # a path claiming 127+ bytes that are not there

    async def capabilities(request: bytes, context: Any) -> bytes:
        return gnmi_pb2.CapabilityResponse(supported_encodings=[gnmi_pb2.PROTO]).SerializeToString()

    async def subscribe(requests: Any, context: Any) -> Any:
        yield bad
        await asyncio.Event().wait()

    def raw(handler: Any, streaming: bool) -> Any:
        kind = grpc.stream_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
        return kind(handler, lambda b: b, lambda b: b)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "gnmi.gNMI", {"Capabilities": raw(capabilities, False), "Subscribe": raw(subscribe, True)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        agent.start(device("bad-update", port, paths=["/interfaces"]))
        await eventually(lambda: _async(agent.stats("bad-update").get("status") == "error"), timeout=10,
                         what="status error")
        assert "malformed message" in agent.stats("bad-update")["last_error"]
    finally:
        await server.stop(0)


@pytest.mark.asyncio
async def test_dropped_stream_reconnects_and_sequence_continues(agent: Agent) -> None:
    async with gnmi_fleet(SimDevice("flaky", interfaces=1, faults=Faults(drop_stream_after_s=1.2))) as fleet:
        agent.start(device("flaky", fleet.ports[0], interval="300ms"))
        await eventually(lambda: _async(agent.kinds("flaky").count("session_up") >= 3), timeout=15,
                         what=f"three sessions ({agent.kinds('flaky')}, {agent.stats('flaky')})")
    assert "session_down" in agent.kinds("flaky")
    seqs = [b.seq for b in agent.of("flaky")]
    assert seqs == list(range(1, len(seqs) + 1))  # one token: no gap, no repeat across reconnects
    assert agent.stats("flaky")["errors"] >= 2


@pytest.mark.asyncio
async def test_watchdog_ends_a_silent_stream(agent: Agent) -> None:
    sim = SimDevice("quiet", interfaces=1)
    async with gnmi_fleet(sim) as fleet:
        agent.start(device("quiet", fleet.ports[0], interval="200ms"))
        await eventually(lambda: _async(len(agent.of("quiet")) >= 2), timeout=10, what="data before the silence")
        sim.faults.hang = True  # the open streams stop sending
        await eventually(lambda: _async(agent.stats("quiet").get("status") == "timeout"), timeout=10,
                         what="the watchdog to fire")
        assert "no data for" in agent.stats("quiet")["last_error"]
        # (the stream that times out first may say subscription_down while the other still delivers)
        await eventually(lambda: _async([k for k in agent.kinds("quiet") if not k.startswith("subscription_")][:3]
                                        == ["session_up", "session_down", "timeout"]),
                         timeout=5, what="session_up, session_down, timeout events")


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["poll", "once", "on_change", "target_defined"])
async def test_subscription_modes(agent: Agent, mode: str) -> None:
    sim = SimDevice("sw", interfaces=2)
    async with gnmi_fleet(sim, check_s=0.1) as fleet:
        dev = device("sw", fleet.ports[0], interval="300ms")
        dev.subscriptions = [wire.Subscription("ifs", ["/interfaces/interface/state/counters"], mode, 0.3)]  # type: ignore[arg-type]
        agent.start(dev)
        await eventually(lambda: _async(len(agent.of("sw")) >= 3), timeout=10, what=f"three {mode} batches")
    batches = agent.of("sw")
    if mode in ("poll", "once"):
        assert all(len(wire.samples_of(b)) == 20 for b in batches[:3])  # each round is a full update
    else:
        assert len(wire.samples_of(batches[0])) == 20 and all(wire.samples_of(b) for b in batches)
    octets = [s.value for b in batches for s in wire.samples_of(b)
              if s.path == "/interfaces/interface[name=eth0]/state/counters/in-octets"]
    assert octets == sorted(octets) and octets[-1] > octets[0]


@pytest.mark.asyncio
async def test_json_ietf_values_are_flattened_to_typed_leaves(agent: Agent) -> None:
    async with gnmi_fleet(SimDevice("js", interfaces=2)) as fleet:
        agent.start(device("js", fleet.ports[0], tags={"gnmi-encoding": "json_ietf"}))
        await eventually(lambda: _async(any(b.subscription == "interfaces" for b in agent.of("js"))), timeout=10,
                         what="a JSON_IETF batch")
    batch = next(b for b in agent.of("js") if b.subscription == "interfaces")
    values = {s.path: s.value for s in wire.samples_of(batch)}
    assert isinstance(values["/interfaces/interface[name=eth1]/state/counters/out-octets"], int)
    assert values["/interfaces/interface[name=eth1]/state/oper-status"] in ("UP", "DOWN")
    assert len(values) == 22
    assert "JSON_IETF" in next(e.detail for e in agent.events if e.kind == "session_up")


@pytest.mark.asyncio
async def test_tls_with_ca_and_client_certificate_and_skip_verify(agent: Agent, tmp_path: Path) -> None:
    m = tlsgen.generate()
    files = m.write(tmp_path / "tls")
    (tmp_path / "secrets.toml").write_text(
        '[sim]\nusername = "admin"\npassword = "admin"\n'
        f'[mtls]\nusername = "admin"\npassword = "admin"\ntls_ca = "{files["ca_cert"]}"\n'
        f'tls_cert = "{files["client_cert"]}"\ntls_key = "{files["client_key"]}"\n')
    tls = TlsFiles(m.server_cert, m.server_key, client_ca=m.ca_cert)
    async with gnmi_fleet(SimDevice("a", interfaces=1), SimDevice("b", interfaces=1), tls=tls) as mtls, \
            gnmi_fleet(SimDevice("c", interfaces=1), tls=TlsFiles(m.server_cert, m.server_key)) as plain:
        agent.start(device("a", mtls.ports[0], tls="on", credential="mtls"))
        agent.start(device("b", mtls.ports[1], tls="on", credential="sim"))  # no client certificate
        agent.start(device("c", plain.ports[0], tls="skip-verify"))
        await eventually(lambda: _async(agent.of("a") and agent.of("c")), timeout=10, what="TLS batches")
        await eventually(lambda: _async(agent.stats("b").get("status") == "unreachable"), timeout=10,
                         what="the device refusing a client without certificate")
    assert not agent.of("b")


@pytest.mark.asyncio
async def test_undefined_credential_and_missing_collector(agent: Agent) -> None:
    async with gnmi_fleet(SimDevice("x", interfaces=1)) as fleet:
        agent.start(device("x", fleet.ports[0], credential="nobody"))
        ssh = inventory.make_device("y", "127.0.0.1", "ssh", port=2222)
        agent.start(ssh)
        await eventually(lambda: _async(agent.stats("x").get("status") == "auth_failed"), timeout=5,
                         what="auth_failed for an undefined credential")
        assert "'nobody' is not defined" in agent.stats("x")["last_error"]
        # the event travels through NATS to the recording subscription: wait for it, then check it is alone
        await eventually(lambda: _async(bool(agent.kinds("x"))), timeout=5, what="the auth_failed event")
        assert agent.kinds("x") == ["auth_failed"]
        if collect.collector_for("ssh") is None:
            await eventually(lambda: _async(agent.stats("y").get("status") == "error"), timeout=5,
                             what="error for a protocol without collector")
        await agent.stop()
    assert agent.collection.device_stats() == {}  # a released device leaves no statistics behind


@pytest.mark.asyncio
async def test_release_while_publishing_always_ends_every_slot(agent: Agent) -> None:
    sims = [SimDevice(f"r{i}", interfaces=8) for i in range(40)]
    async with gnmi_fleet(*sims) as fleet:
        for sim, port in zip(sims, fleet.ports):
            agent.start(device(sim.name, port, interval="100ms"))
        await eventually(lambda: _async(len({b.device for b in agent.batches}) == 40), timeout=30,
                         what="all forty devices publishing")
        started = time.monotonic()
        await agent.stop()  # every slot must end: a swallowed cancellation would hang here (bounded: 5 s)
        assert time.monotonic() - started < 5
    assert agent.collection.device_stats() == {}


@pytest.mark.asyncio
async def test_make_slot_factory_is_what_the_lease_manager_calls(bootstrapped: str, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[sim]\nusername = "admin"\npassword = "admin"\n')
    nc = await nats.connect(bootstrapped)
    try:
        s = settings.load({"secrets_file": str(secrets), "nats_url": bootstrapped}, env={})
        slot_factory, stats_provider = collect.make_slot_factory(nc, s, "agent-f")
        async with gnmi_fleet(SimDevice("f1", interfaces=1)) as fleet:
            task = asyncio.create_task(slot_factory(device("f1", fleet.ports[0]), 11))
            await eventually(lambda: _async(stats_provider().get("f1", {}).get("status") == "collecting"),
                             timeout=10, what="f1 collecting")
            row = stats_provider()["f1"]
            assert row["token"] == 11 and row["protocol"] == "gnmi" and row["samples"] > 0
            assert not any(k.startswith("_") for k in row)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert stats_provider() == {}
    finally:
        await nc.close()


# ---- what independent targets do (issue 14): each test fails on the collector before the fix ----------


def sub(name: str, paths: list[str], mode: str = "sample", interval_s: float = 0.3) -> wire.Subscription:
    return wire.Subscription(name, paths, mode, interval_s)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_target_refusing_every_subscribe_never_looks_up_and_says_so_once(
        agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gnmi, "BACKOFF_CAP_S", 0.2)
    async with gnmi_fleet(SimDevice("deaf", interfaces=1, faults=Faults(refuse_subscribe=True))) as fleet:
        agent.start(device("deaf", fleet.ports[0]))
        await eventually(lambda: _async(agent.stats("deaf").get("errors", 0) >= 6), timeout=15,
                         what="six refused attempts")
        await eventually(lambda: _async(bool(agent.kinds("deaf"))), timeout=5, what="the error event")
    st = agent.stats("deaf")
    assert st["status"] == "error" and "UNIMPLEMENTED" in st["last_error"], st
    # Capabilities answered, but no Subscribe was accepted: never up, so never down; one error event, and
    # device_down once the failures are repeated (hysteresis)
    assert agent.kinds("deaf") == ["error", "device_down"], agent.kinds("deaf")
    assert {n: s["status"] for n, s in st["subscriptions"].items()} == {"interfaces": "error", "system": "error"}


@pytest.mark.asyncio
async def test_an_empty_answer_says_paths_matched_nothing_and_names_the_models(agent: Agent) -> None:
    sim = SimDevice("empty", interfaces=1, faults=Faults(empty_unknown=True))
    async with gnmi_fleet(sim) as fleet:
        dev = device("empty", fleet.ports[0])
        dev.subscriptions = [sub("vendor", ["/vendor/acme/state"])]
        agent.start(dev)
        await eventually(lambda: _async(agent.stats("empty").get("status") == "error"), timeout=10,
                         what=f"an error instead of 'starting' ({agent.stats('empty')})")
        await eventually(lambda: _async(bool(agent.kinds("empty"))), timeout=5, what="an event")
    err = agent.stats("empty")["last_error"]
    assert "paths matched nothing (/vendor/acme/state)" in err, err
    assert "openconfig-interfaces" in err and "openconfig-system" in err, err
    assert agent.kinds("empty")[0] == "error" and "session_up" not in agent.kinds("empty")
    assert "paths matched nothing" in agent.events[0].detail


@pytest.mark.asyncio
async def test_an_encoding_the_target_does_not_offer_falls_back_to_one_it_does(agent: Agent) -> None:
    sim = SimDevice("ietf", interfaces=2, faults=Faults(encodings=("json_ietf",)))
    async with gnmi_fleet(sim) as fleet:
        agent.start(device("ietf", fleet.ports[0], tags={"gnmi-encoding": "proto"}))
        await eventually(lambda: _async(len(agent.of("ietf")) >= 2), timeout=10, what="batches after falling back")
        await eventually(lambda: _async("session_up" in agent.kinds("ietf")), timeout=5, what="session_up")
    detail = next(e.detail for e in agent.events if e.kind == "session_up")
    assert "JSON_IETF" in detail and "gnmi-encoding=proto ignored" in detail, detail
    assert "error" not in agent.kinds("ietf")


@pytest.mark.asyncio
async def test_samples_outside_a_subscriptions_paths_are_not_stored_under_it(agent: Agent) -> None:
    sim = SimDevice("greedy", interfaces=2, faults=Faults(ignore_paths=True))
    async with gnmi_fleet(sim) as fleet:
        dev = device("greedy", fleet.ports[0])
        dev.subscriptions = [sub("counters", ["/interfaces/interface/state/counters/in-octets"]),
                             sub("cpu", ["/system/cpus/cpu/state/total/instant"])]
        agent.start(dev)
        await eventually(lambda: _async({b.subscription for b in agent.of("greedy")} == {"counters", "cpu"}),
                         timeout=10, what="batches of both subscriptions")
    for b in agent.of("greedy"):
        paths = {s.path for s in wire.samples_of(b)}
        if b.subscription == "counters":
            assert paths == {f"/interfaces/interface[name=eth{i}]/state/counters/in-octets" for i in range(2)}
        else:
            assert paths == {"/system/cpus/cpu[index=ALL]/state/total/instant"}
    subs = agent.stats("greedy")["subscriptions"]
    assert subs["counters"]["dropped"] > 0 and subs["cpu"]["dropped"] > 0


@pytest.mark.asyncio
async def test_an_on_change_stream_without_heartbeats_is_not_reconnected(agent: Agent) -> None:
    sim = SimDevice("calm", interfaces=2, faults=Faults(no_heartbeat=True))
    async with gnmi_fleet(sim, check_s=0.1) as fleet:
        dev = device("calm", fleet.ports[0])
        dev.subscriptions = [sub("oper", ["/interfaces/interface/state/oper-status"], "on_change", 1.0)]
        agent.start(dev)
        await eventually(lambda: _async(len(agent.of("calm")) >= 1), timeout=10, what="the initial state")
        # the old application watchdog, max(3 × 1 s, 1 s + 0.5 s) = 3 s, reconnected it: watch for longer
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not agent.stats("calm").get("errors"):
            await asyncio.sleep(0.1)
        assert fleet.targets[0].subscribes == 1
    assert agent.stats("calm")["errors"] == 0 and agent.stats("calm")["status"] == "collecting"
    assert agent.kinds("calm") == ["session_up"]


@pytest.mark.asyncio
async def test_keepalive_detects_a_dead_transport_under_a_quiet_on_change_stream(
        agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.tcpproxy import TcpProxy

    fast = {"grpc.keepalive_time_ms": 1000, "grpc.keepalive_timeout_ms": 1000, "grpc.http2.ping_timeout_ms": 1000}
    monkeypatch.setattr(gnmi, "CHANNEL_OPTIONS", [(k, fast.get(k, v)) for k, v in gnmi.CHANNEL_OPTIONS])
    sim = SimDevice("far", interfaces=1, faults=Faults(no_heartbeat=True))
    async with gnmi_fleet(sim, check_s=0.1) as fleet:
        proxy = await TcpProxy(fleet.ports[0]).start()
        try:
            dev = device("far", proxy.port)
            dev.subscriptions = [sub("oper", ["/interfaces/interface/state/oper-status"], "on_change", 0.2)]
            agent.start(dev)
            await eventually(lambda: _async(len(agent.of("far")) >= 1), timeout=10, what="the initial state")
            proxy.cut()  # a partition: no FIN, no RST, nothing more from the target (which sends nothing anyway)
            cut_ns = time.time_ns()
            await eventually(lambda: _async("session_down" in agent.kinds("far")), timeout=15,
                             what=f"keepalive to end the stream ({agent.stats('far')})")
        finally:
            await proxy.close()
    down = next(e for e in agent.events if e.device == "far" and e.kind == "session_down")
    assert "unavailable" in down.detail, down.detail  # the transport, not an application watchdog
    assert (down.ts - cut_ns) / 1e9 < 8, "keepalive (1 s, 1 s timeout) took too long"


@pytest.mark.asyncio
async def test_poll_works_when_the_target_syncs_after_the_first_round_only(agent: Agent) -> None:
    sim = SimDevice("poller", interfaces=2, faults=Faults(poll_sync_once=True))
    async with gnmi_fleet(sim) as fleet:
        dev = device("poller", fleet.ports[0])
        dev.subscriptions = [sub("ifs", ["/interfaces/interface/state/counters"], "poll", 0.3)]
        agent.start(dev)
        await eventually(lambda: _async(len(agent.of("poller")) >= 5), timeout=10,
                         what=f"five poll rounds ({agent.stats('poller')})")
    assert agent.kinds("poller") == ["session_up"] and agent.stats("poller")["errors"] == 0
    assert all(len(wire.samples_of(b)) == 20 for b in agent.of("poller")[:5])  # each round whole, none split or merged


@pytest.mark.asyncio
async def test_one_failing_subscription_leaves_the_device_collecting_with_one_event(
        agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gnmi, "BACKOFF_CAP_S", 0.2)
    async with gnmi_fleet(SimDevice("half", interfaces=2)) as fleet:
        dev = device("half", fleet.ports[0])
        # ifs at 1 s: its watchdog (3 s) must not fire on a loaded machine, this test is about bogus
        dev.subscriptions = [sub("ifs", ["/interfaces/interface/state/counters"], interval_s=1.0),
                             sub("bogus", ["/no/such/thing"])]
        agent.start(dev)
        await eventually(lambda: _async(agent.stats("half").get("subscriptions", {}).get("bogus", {})
                                        .get("errors", 0) >= 5), timeout=15, what="five failures of bogus")
        n = len(agent.of("half"))
        await eventually(lambda: _async(len(agent.of("half")) > n + 2), timeout=10, what="ifs still delivering")
    st = agent.stats("half")
    assert st["status"] == "collecting" and not st["down"], st
    assert st["subscriptions"]["ifs"]["status"] == "collecting"
    assert st["subscriptions"]["bogus"]["status"] == "error"
    assert "NOT_FOUND" in st["subscriptions"]["bogus"]["last_error"]
    assert {b.subscription for b in agent.of("half")} == {"ifs"}
    assert sorted(agent.kinds("half")) == ["session_up", "subscription_down"], agent.kinds("half")


@pytest.mark.asyncio
async def test_batches_of_updates_that_arrive_in_one_slot_are_published_in_one_loop_wakeup() -> None:
    """The linger timer sits on a grid shared by every batcher: updates arriving within one slot share one
    deadline (one wakeup of the loop for all their publishes), at least LINGER_S after each one's first
    notification and less than twice that."""
    step = gnmi.LINGER_S
    for now in (0.0, 1.0, 1234.5678, 10**6 + 0.01):
        at = gnmi.linger_until(now)
        assert now + step <= at < now + 2 * step
        assert gnmi.linger_until(now + step / 3) in (at, at + step)
    loop = asyncio.get_running_loop()
    batchers = [gnmi.Batcher(None, f"s{i}") for i in range(3)]  # type: ignore[arg-type]  # add() needs no context
    while (loop.time() % step) > step / 2:  # start in the first half of a slot: both adds fall in it
        await asyncio.sleep(step / 10)
    cols = wire.Columns()
    cols.paths, cols.values, cols.times, cols.runs = ["/a"], [1], [1], [1]
    await batchers[0].add(cols)
    await asyncio.sleep(0)
    await batchers[1].add(cols)
    assert batchers[0]._timer is not None and batchers[1]._timer is not None
    assert batchers[0]._timer.when() == batchers[1]._timer.when()
    await batchers[0].add(None, flush=True)  # sync_response: at once, and its timer is gone
    assert batchers[0].ready.is_set() and batchers[0]._timer is None
    await asyncio.wait_for(batchers[1].ready.wait(), 2 * step + 0.05)
    assert batchers[2]._timer is None and not batchers[2].ready.is_set()  # nothing added: nothing due
