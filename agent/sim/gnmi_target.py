"""A gNMI target (grpc.aio) serving one :class:`SimDevice`: Capabilities, Get and Subscribe.

Subscribe supports STREAM (SAMPLE with sample_interval and suppress_redundant, ON_CHANGE, TARGET_DEFINED,
heartbeat_interval), ONCE and POLL, updates_only, sync_response, and the PROTO, JSON and JSON_IETF
encodings. Logins are the ``username``/``password`` call metadata. TLS is optional (server certificate,
optionally requiring a client certificate).

One grpc.aio server per device: gRPC Python does not tell a handler which local port or ``:authority``
a call came in on, so a shared server could not tell the devices apart. Measured here (grpcio 1.85,
one core): a server per port costs ~31 kB and ~0.3 ms to start; 2,000 devices start in ~0.7 s and use
~62 MB, one listening socket each, and the servers share gRPC's threads and completion queue.

Faults (``device.faults``): wrong_password rejects every login, delay_s delays every call's first answer, hang
accepts and never answers (set while a stream runs, the stream goes
silent), drop_stream_after_s aborts a Subscribe with UNAVAILABLE, garbage answers with
bytes that parse as no gNMI message.

Quirks of real targets (also ``device.faults``, issue 14): no_heartbeat (ON_CHANGE ignores
heartbeat_interval), poll_sync_once (POLL sends sync_response after the first round only), encodings
(Capabilities offers, and Subscribe accepts, only those), ignore_paths (every leaf whatever the paths),
refuse_subscribe (every Subscribe UNIMPLEMENTED), empty_unknown (unserved paths get empty notifications).

The server accepts keepalive pings every 1 s or slower on idle streams (the gRPC default refuses more
than one per 5 minutes with GOAWAY ``too_many_pings``): the collector's transport liveness on quiet
ON_CHANGE streams is the keepalive ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from gnmi_pb import gnmi_pb2

from swtel.agent.collectors import gnmi_paths
from swtel.agent.sim import gnmi_tree as tree
from swtel.agent.sim.model import SimDevice

GNMI_VERSION = "0.10.0"
DEFAULT_SAMPLE_S = 10.0
MIN_SAMPLE_S = 0.05
CHANGE_CHECK_S = 1.0  # ON_CHANGE: how often the target looks for changed values


def _serialize(msg: Any) -> bytes:
    """Responses are pre-encoded bytes (notifications) or protobuf messages (capabilities)."""
    return msg if isinstance(msg, (bytes, bytearray)) else msg.SerializeToString()


@dataclass(frozen=True)
class TlsFiles:
    """PEM bytes for a TLS server; ``client_ca`` set means client certificates are required."""

    cert: bytes
    key: bytes
    client_ca: bytes | None = None


class GnmiTarget:
    """The gNMI service of one simulated device."""

    def __init__(self, device: SimDevice, check_s: float = CHANGE_CHECK_S) -> None:
        self.device = device
        self.check_s = check_s
        names = {"proto": gnmi_pb2.PROTO, "json": gnmi_pb2.JSON, "json_ietf": gnmi_pb2.JSON_IETF}
        self.encodings = tuple(names[e] for e in device.faults.encodings if e in names) or tree.SUPPORTED_ENCODINGS
        self.leaves = tree.leaves_for(device.platform, device.interfaces)
        self.subscribes = 0  # Subscribe calls accepted (tests read it)

    # ---- common --------------------------------------------------------------------------------------

    async def _admit(self, context: grpc.aio.ServicerContext) -> None:
        """Login check and the delay/hang faults, before any answer."""
        md = {m.key: m.value for m in context.invocation_metadata() or ()}
        d, f = self.device, self.device.faults
        if f.wrong_password or md.get("username") != d.username or md.get("password") != d.password:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "authentication failed")
        if f.delay_s:
            await asyncio.sleep(f.delay_s)
        if f.hang:
            await asyncio.Event().wait()  # until the client gives up (the call is then cancelled)

    def _leaves(self, prefix: gnmi_pb2.Path, path: gnmi_pb2.Path) -> list[tree.Leaf]:
        return tree.match(self.leaves, gnmi_paths.elems_of(prefix) + gnmi_paths.elems_of(path))

    def _notification(self, leaves: list[tree.Leaf], encoding: int) -> bytes:
        return tree.notification(tree.Reader(self.device, time.monotonic()), leaves, encoding, time.time_ns())

    # ---- RPCs ----------------------------------------------------------------------------------------

    async def Capabilities(self, request: gnmi_pb2.CapabilityRequest, context: grpc.aio.ServicerContext) -> Any:
        await self._admit(context)
        if self.device.faults.garbage:
            return tree.GARBAGE
        return gnmi_pb2.CapabilityResponse(
            supported_models=[gnmi_pb2.ModelData(name=n, organization=o, version=v) for n, o, v in tree.MODELS],
            supported_encodings=list(self.encodings),
            gNMI_version=GNMI_VERSION,
        )

    async def Get(self, request: gnmi_pb2.GetRequest, context: grpc.aio.ServicerContext) -> Any:
        await self._admit(context)
        if self.device.faults.garbage:
            return tree.GARBAGE
        encoding = request.encoding
        if encoding not in self.encodings:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"encoding {encoding} is not supported")
        notifs = []
        for path in request.path or [gnmi_pb2.Path()]:
            want = gnmi_paths.elems_of(request.prefix) + gnmi_paths.elems_of(path)
            leaves = tree.match(self.leaves + tree.FACT_LEAVES, want)
            if not leaves:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no data at {gnmi_paths.path_string((), path)}")
            notifs.append(self._notification(leaves, encoding))
        return tree.get_response(notifs)

    async def Set(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the simulator is read-only")

    async def Subscribe(self, requests: AsyncIterator[gnmi_pb2.SubscribeRequest], context: grpc.aio.ServicerContext) -> None:
        await self._admit(context)
        try:
            first = await anext(aiter(requests))
        except StopAsyncIteration:
            return
        if not first.HasField("subscribe"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request must be a SubscriptionList")
        sl = first.subscribe
        faults = self.device.faults
        if faults.refuse_subscribe:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Subscribe is not supported (simulated quirk)")
        if sl.encoding not in self.encodings:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"encoding {sl.encoding} is not supported")
        if faults.ignore_paths:
            entries = [(s, list(self.leaves)) for s in sl.subscription]
        else:
            entries = [(s, self._leaves(sl.prefix, s.path)) for s in sl.subscription]
        if (not entries or not any(leaves for _, leaves in entries)) and not faults.empty_unknown:
            await context.abort(grpc.StatusCode.NOT_FOUND, "the subscription matches no data")
        self.subscribes += 1
        stream = _Stream(self, context, sl.encoding)
        drop = self.device.faults.drop_stream_after_s
        try:
            async with asyncio.timeout(drop):
                await stream.run(sl, entries, requests)
        except TimeoutError:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "stream dropped (simulated fault)")


class _Stream:
    """One Subscribe call: writes are serialised by a lock because several subscriptions share the call."""

    def __init__(self, target: GnmiTarget, context: grpc.aio.ServicerContext, encoding: int) -> None:
        self.target, self.context, self.encoding = target, context, encoding
        self.lock = asyncio.Lock()

    async def write(self, msg: bytes) -> None:
        faults = self.target.device.faults
        if faults.hang:  # set while a stream runs: the stream goes silent (the collector's watchdog case)
            await asyncio.Event().wait()
        if faults.garbage:
            msg = tree.GARBAGE
        async with self.lock:
            await self.context.write(msg)

    async def send(self, leaves: list[tree.Leaf]) -> None:
        if leaves:
            await self.write(tree.subscribe_update(self.target._notification(leaves, self.encoding)))
        elif self.target.device.faults.empty_unknown:  # a notification with a timestamp and no update
            await self.write(tree.subscribe_update(self.target._notification([], self.encoding)))

    async def run(self, sl: gnmi_pb2.SubscriptionList, entries: list[tuple[gnmi_pb2.Subscription, list[tree.Leaf]]],
                  requests: AsyncIterator[gnmi_pb2.SubscribeRequest]) -> None:
        everything = list(dict.fromkeys(leaf for _, leaves in entries for leaf in leaves))
        if not sl.updates_only or sl.mode != gnmi_pb2.SubscriptionList.STREAM:
            await self.send(everything)
        await self.write(tree.SYNC_RESPONSE)
        if sl.mode == gnmi_pb2.SubscriptionList.ONCE:
            return
        if sl.mode == gnmi_pb2.SubscriptionList.POLL:
            async for req in requests:
                if req.HasField("poll"):
                    await self.send(everything)
                    if not self.target.device.faults.poll_sync_once:
                        await self.write(tree.SYNC_RESPONSE)
            return
        async with asyncio.TaskGroup() as tg:
            for sub, leaves in entries:
                for fn in self._plan(sub, leaves):
                    tg.create_task(fn())

    def _plan(self, sub: gnmi_pb2.Subscription, leaves: list[tree.Leaf]) -> list[Callable[[], Any]]:
        """The loops one STREAM subscription needs. TARGET_DEFINED: oper-status on change, the rest sampled."""
        sample_s = max(MIN_SAMPLE_S, sub.sample_interval / 1e9) if sub.sample_interval else DEFAULT_SAMPLE_S
        heartbeat_s = sub.heartbeat_interval / 1e9 if sub.heartbeat_interval else None
        if self.target.device.faults.no_heartbeat:
            heartbeat_s = None
        mode = sub.mode
        if mode == gnmi_pb2.SAMPLE:
            if sub.suppress_redundant:
                return [lambda: self._changes(leaves, sample_s, heartbeat_s)]
            return [lambda: self._sample(leaves, sample_s)]
        if mode == gnmi_pb2.ON_CHANGE:
            return [lambda: self._changes(leaves, self.target.check_s, heartbeat_s)]
        changing = [leaf for leaf in leaves if leaf.kind == "oper"]
        sampled = [leaf for leaf in leaves if leaf.kind != "oper"]
        out: list[Callable[[], Any]] = []
        if sampled:
            out.append(lambda: self._sample(sampled, sample_s))
        if changing:
            out.append(lambda: self._changes(changing, self.target.check_s, heartbeat_s))
        return out

    async def _sample(self, leaves: list[tree.Leaf], every_s: float) -> None:
        next_at = time.monotonic() + every_s
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += every_s
            await self.send(leaves)

    async def _changes(self, leaves: list[tree.Leaf], check_s: float, heartbeat_s: float | None) -> None:
        """Send leaves whose value changed since last sent; everything again every heartbeat."""
        reader = tree.Reader(self.target.device, time.monotonic())
        last = {leaf: reader.value(leaf) for leaf in leaves}  # the initial update already sent these
        next_heartbeat = time.monotonic() + heartbeat_s if heartbeat_s else None
        while True:
            await asyncio.sleep(check_s)
            now = time.monotonic()
            reader = tree.Reader(self.target.device, now)
            if next_heartbeat is not None and now >= next_heartbeat:
                changed = list(leaves)
                next_heartbeat = now + heartbeat_s  # type: ignore[operator]
            else:
                changed = [leaf for leaf in leaves if reader.value(leaf) != last[leaf]]
            for leaf in changed:
                last[leaf] = reader.value(leaf)
            if changed:
                await self.write(tree.subscribe_update(
                    tree.notification(reader, changed, self.encoding, time.time_ns())))


def _handler(target: GnmiTarget) -> grpc.GenericRpcHandler:
    """The gNMI service with a serializer that passes pre-encoded bytes through."""
    handlers = {
        "Capabilities": grpc.unary_unary_rpc_method_handler(
            target.Capabilities, gnmi_pb2.CapabilityRequest.FromString, _serialize),
        "Get": grpc.unary_unary_rpc_method_handler(target.Get, gnmi_pb2.GetRequest.FromString, _serialize),
        "Set": grpc.unary_unary_rpc_method_handler(target.Set, gnmi_pb2.SetRequest.FromString, _serialize),
        "Subscribe": grpc.stream_stream_rpc_method_handler(
            target.Subscribe, gnmi_pb2.SubscribeRequest.FromString, _serialize),
    }
    return grpc.method_handlers_generic_handler("gnmi.gNMI", handlers)


class GnmiFleet:
    """Running gNMI targets; ``ports[i]`` serves ``devices[i]``."""

    def __init__(self) -> None:
        self.devices: list[SimDevice] = []
        self.targets: list[GnmiTarget] = []
        self.ports: list[int] = []
        self._servers: list[grpc.aio.Server] = []

    async def close(self, grace: float = 1.0) -> None:
        servers, self._servers = self._servers, []
        await asyncio.gather(*(s.stop(grace) for s in servers), return_exceptions=True)


async def serve_gnmi(devices: list[SimDevice], host: str, ports: list[int], *, tls: TlsFiles | None = None,
                     check_s: float = CHANGE_CHECK_S) -> GnmiFleet:
    """Start one gNMI server per device on ``host:ports[i]`` (0 picks a free port)."""
    fleet = GnmiFleet()
    creds = None
    if tls is not None:
        creds = grpc.ssl_server_credentials([(tls.key, tls.cert)], root_certificates=tls.client_ca,
                                            require_client_auth=tls.client_ca is not None)
    try:
        for device, port in zip(devices, ports, strict=True):
            target = GnmiTarget(device, check_s=check_s)
            server = grpc.aio.server(options=[("grpc.so_reuseport", 0),
                                              ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
                                              ("grpc.http2.max_ping_strikes", 0)])
            server.add_generic_rpc_handlers((_handler(target),))
            address = f"{host}:{port}"
            bound = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
            await server.start()
            fleet._servers.append(server)
            fleet.devices.append(device)
            fleet.targets.append(target)
            fleet.ports.append(bound)
    except BaseException:
        with contextlib.suppress(Exception):
            await fleet.close(0)
        raise
    return fleet
