"""The gNMI collector (grpc.aio): one session per held device, one Subscribe per inventory subscription.

A session: open the channel (plain, TLS with CA and client certificate, or TLS without verification),
call Capabilities (bounded), choose the encoding (PROTO, else JSON_IETF, else JSON; the device tag
``gnmi-encoding`` overrides when Capabilities offers it), then run every subscription of the device:

- ``sample`` / ``on_change`` / ``target_defined``: a STREAM subscription with ``sample_interval``
  (``heartbeat_interval`` for on_change, which many targets ignore);
- ``poll``: a POLL subscription, a Poll request every interval (rounds need no sync_response);
- ``once``: a ONCE subscription every interval.

The session is up (``session_up``) when data or a sync_response arrives. Each subscription keeps only
samples under its own paths and fails alone (refused, "paths matched nothing", ended, silent), retried
with backoff while the others deliver; the session ends when nothing delivers or the login or transport
fails, and is retried with jittered exponential backoff ("full jitter", capped at 30 s, or 60 s after a
refused login), starting over after a session that delivered data. SAMPLE streams silent for
max(3 × interval, interval + 10 s) are dead; ON_CHANGE / TARGET_DEFINED streams, once answered, are
watched by gRPC keepalive pings (the transport), not by heartbeats. Updates and deletes (a delete is a
sample with value ``None``) are decoded with their prefix in either path notation; JSON values are
flattened to leaves. Samples are gathered per subscription and published as one batch per device
update: at sync_response, 50-100 ms after an update's first notification (on a grid shared by all
devices: see linger_until), or at 5,000 samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import operator
import ssl
import time
from collections.abc import Callable
from typing import Any

import grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from google.protobuf.message import DecodeError

from swtel.agent.collectors import gnmi_paths
from swtel.agent.collectors.base import (
    CollectorContext,
    SubscriptionStats,
    attempt_failed,
    attempt_ok,
    backoff,
)
from swtel.shared import wire
from swtel.shared.errors import InvalidInput
from swtel.shared.inventory import parse_duration

log = logging.getLogger("swtel.agent.gnmi")


class _QuietDeserializeErrors(logging.Filter):
    """grpc logs a traceback at ERROR for every message it cannot deserialize; the collector reports
    those itself (status ``error``, "malformed message"), once per failure, so grpc's copy is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Exception deserializing")


logging.getLogger("grpc._common").addFilter(_QuietDeserializeErrors())

RPC_TIMEOUT_S = 10.0  # Capabilities, a ONCE or POLL round, TLS certificate fetch
WATCHDOG_GRACE_S = 10.0  # a stream silent for max(3 × interval, interval + this) is dead
LINGER_S = 0.05  # notifications this close to an update's first are one device update (linger_until)
MAX_BATCH = 5_000  # samples per published batch (~400 kB, well under NATS's 1 MB max payload)
MAX_PENDING = 50_000  # samples buffered per subscription before the reader waits for the publisher
BACKOFF_CAP_S = 30.0
AUTH_BACKOFF_CAP_S = 60.0
KEEPALIVE_S = 30.0  # HTTP/2 ping period: the liveness of quiet streams (device tag gnmi-keepalive)
KEEPALIVE_TIMEOUT_S = 10.0  # a ping unanswered this long ends the transport (UNAVAILABLE)
KEEPALIVE_MAX_S = 330.0  # gRPC and Go servers accept one ping per 5 minutes on a quiet stream by default
READ_BUFFER_MAX = 8192  # bytes: grpc-core's initial read size (PosixTcpOptions::kDefaultReadChunkSize)
# Transport liveness is gRPC's keepalive ping, not gNMI heartbeats (which many targets ignore). grpc-core
# stops pinging after max_pings_without_data (default 2) pings on a stream that carries no data, which
# is exactly a quiet ON_CHANGE stream, so that limit is lifted; since grpc 1.6x the ping's answer is
# awaited http2.ping_timeout_ms (default 60 s), so it is set with keepalive_timeout_ms.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", int(KEEPALIVE_S * 1000)),
    ("grpc.keepalive_timeout_ms", int(KEEPALIVE_TIMEOUT_S * 1000)),
    ("grpc.http2.ping_timeout_ms", int(KEEPALIVE_TIMEOUT_S * 1000)),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    # gRPC sizes each connection's next read from what the last reads returned: one read of more than 80 % of
    # its 8 kB start (one notification of 8 interfaces is 7 kB) doubles the target, and from 12 kB on it reads
    # into 64 kB slices, each kept until reads have walked through all of it (a notification per interval, so
    # ~90 s at 10 s). Every session starts at once, so at 10,000 devices these slices were allocated together
    # and filled together: +400-500 MB of RSS ~90 s into start-up (the ramp peak), released together.
    # Capped at its start, the target stays under 12 kB: 8 kB slices, a larger message is read in more
    # than one call (2,000 devices x 48 interfaces: no CPU cost measured). grpc/grpc#42234 added the argument
    # (grpcio 1.85 has it); older releases ignore it.
    ("grpc.experimental.tcp_max_read_buffer_size", READ_BUFFER_MAX),
]
_ENCODINGS = {"proto": gnmi_pb2.PROTO, "json_ietf": gnmi_pb2.JSON_IETF, "json": gnmi_pb2.JSON}
_MODES = {"sample": gnmi_pb2.SAMPLE, "on_change": gnmi_pb2.ON_CHANGE, "target_defined": gnmi_pb2.TARGET_DEFINED}


class SessionError(Exception):
    """Ends a session. ``status`` goes into DeviceStats, ``kind`` is the event published."""

    def __init__(self, status: str, kind: str, message: str, *, too_many_pings: bool = False) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind
        self.too_many_pings = too_many_pings


def _classify(e: grpc.aio.AioRpcError, what: str) -> SessionError:
    code, details = e.code(), (e.details() or "").strip()
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return SessionError("auth_failed", "auth_failed", f"{what}: login refused ({details})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return SessionError("timeout", "timeout", f"{what}: no answer within {RPC_TIMEOUT_S:g}s")
    if code == grpc.StatusCode.UNAVAILABLE and ("too_many_pings" in details.lower()
                                                or "too many pings" in details.lower()):
        return SessionError("unreachable", "session_down", f"{what}: the device refused our keepalive pings "
                            "(GOAWAY too_many_pings)", too_many_pings=True)
    if code == grpc.StatusCode.UNAVAILABLE:
        return SessionError("unreachable", "session_down", f"{what}: unavailable ({details})")
    if code == grpc.StatusCode.INTERNAL and "deserializ" in details.lower():
        return SessionError("error", "error", f"{what}: the device sent a malformed message")
    return SessionError("error", "error", f"{what}: {code.name} ({details})")


# ---- decoding -----------------------------------------------------------------------------------------


def _views() -> tuple[type, ...]:
    """Views of the gNMI wire format that let upb do the per-update work in C (same bytes, other schemas):

    - ``NotificationBytes``: every ``Path`` field (Notification ``prefix`` and ``delete``, Update ``path``)
      declared ``bytes``: upb builds no Path/PathElem objects per update, and the bytes received are the
      path cache's key as they are (no SerializeToString); the one-by-one decode reads it;
    - ``SubscribeResponseRaw``, as Subscribe streams are read: ``update`` is the Notification's bytes,
      which the decoder parses in the views below;
    - ``_Head``: a Notification's timestamp, prefix, deletes, and its updates as bytes (counted, not read);
    - ``_Merged`` and ``_MergedUints``: a Notification whose ``update`` (4) is declared a *singular*
      message. Protobuf merges the occurrences of a singular message field, and merging appends repeated
      fields, so ``update.path`` and ``update.val`` list every update's path and value in order, built by
      upb in C. In ``_MergedUints``, ``val`` is ``repeated uint64``: each value's bytes are read as packed
      varints, which for a counter (``uint_val``, field 3: tag byte 0x18, then the varint) are 24 and the
      counter;
    - ``_UintValues``: values' bytes concatenated, ``uint_val`` as a list of ints.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="swtel/gnmi_bytes.proto", package="swtel_gnmi_bytes",
                                            syntax="proto3", dependency=[gnmi_pb2.DESCRIPTOR.name])

    def message(name: str, *fields: tuple, oneof: str = "") -> None:
        m = fd.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for fname, number, ftype, repeated, type_name, in_oneof in fields:
            f = m.field.add(name=fname, number=number, type=ftype,
                            label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = type_name
            if in_oneof:
                f.oneof_index = 0

    B, M = F.TYPE_BYTES, F.TYPE_MESSAGE
    message("Update", ("path", 1, B, False, "", False), ("value", 2, M, False, ".gnmi.Value", False),
            ("val", 3, M, False, ".gnmi.TypedValue", False), ("duplicates", 4, F.TYPE_UINT32, False, "", False))
    message("Notification", ("timestamp", 1, F.TYPE_INT64, False, "", False), ("prefix", 2, B, False, "", False),
            ("update", 4, M, True, ".swtel_gnmi_bytes.Update", False), ("delete", 5, B, True, "", False),
            ("atomic", 6, F.TYPE_BOOL, False, "", False))
    message("SubscribeResponseRaw", ("update", 1, B, False, "", True),
            ("sync_response", 3, F.TYPE_BOOL, False, "", True), ("error", 4, M, False, ".gnmi.Error", True),
            oneof="response")  # extension (5) stays an unknown field: never read
    message("Head", ("timestamp", 1, F.TYPE_INT64, False, "", False), ("prefix", 2, B, False, "", False),
            ("update", 4, B, True, "", False), ("delete", 5, B, True, "", False))
    message("Updates", ("path", 1, B, True, "", False), ("value", 2, B, True, "", False),
            ("val", 3, B, True, "", False))
    message("UintUpdates", ("path", 1, B, True, "", False), ("val", 3, F.TYPE_UINT64, True, "", False))
    message("Merged", ("update", 4, M, False, ".swtel_gnmi_bytes.Updates", False))
    message("MergedUints", ("update", 4, M, False, ".swtel_gnmi_bytes.UintUpdates", False))
    message("UintValues", ("uint_val", 3, F.TYPE_UINT64, True, "", False))
    pool = descriptor_pool.Default()
    pool.Add(fd)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"swtel_gnmi_bytes.{name}"))
                 for name in ("Notification", "SubscribeResponseRaw", "Head", "Merged",
                              "MergedUints", "UintValues"))


NotificationBytes, SubscribeResponseRaw, _Head, _Merged, _MergedUints, _UintValues = _views()


def subscribe_call(channel: grpc.aio.Channel) -> grpc.aio.StreamStreamMultiCallable:
    """gNMI Subscribe whose responses are read as :data:`SubscribeResponseRaw`."""
    return channel.stream_stream("/gnmi.gNMI/Subscribe",
                                 request_serializer=gnmi_pb2.SubscribeRequest.SerializeToString,
                                 response_deserializer=SubscribeResponseRaw.FromString)


# Path strings by serialized prefix, then serialized path: devices of one model send the same paths, so
# the cache is shared by all sessions (and so are the strings in the batches); cleared when full.
_PATHS: dict[bytes, dict[bytes, str]] = {}
_PATHS_MAX = 200_000
_size = 0


def _new_path(cache: dict[bytes, str], key: bytes, prefix: bytes) -> str:
    global _size
    if _size >= _PATHS_MAX:
        for c in _PATHS.values():
            c.clear()
        _size = 0
    _size += 1
    try:
        elems = gnmi_paths.elems_of(gnmi_pb2.Path.FromString(prefix)) + gnmi_paths.elems_of(gnmi_pb2.Path.FromString(key))
    except DecodeError:  # the bytes view defers a bad Path's parse to here: the notification is malformed
        raise ValueError("a path is no gnmi.Path") from None
    s = cache[key] = gnmi_paths.format_elems(elems)
    return s


def decode_notification(n: Any, out: wire.Columns) -> None:
    """Append the samples of one Notification (its bytes, as Subscribe streams are read, a
    :data:`NotificationBytes` or a ``gnmi_pb2.Notification``) to ``out`` as one run (one timestamp). The
    hot path: ~500 updates per message, straight into the columns (no object per sample; the path strings
    are the cache's, shared by every interval and every device of one model). Raises ValueError for a
    value or path that does not decode, DecodeError for bytes that are no gnmi.Notification."""
    if isinstance(n, gnmi_pb2.Notification):  # Get answers, tests: not the hot path
        n = NotificationBytes.FromString(n.SerializeToString())
    data = n if isinstance(n, bytes) else None
    if data is not None:
        n = _Head.FromString(data)
    ts = n.timestamp or time.time_ns()
    prefix = n.prefix
    cache = _PATHS.get(prefix)
    if cache is None:
        cache = _PATHS[prefix] = {}
    start = len(out.values)
    if data is None:
        _decode_updates(n.update, cache, prefix, out)
    elif not _decode_fast(data, len(n.update), cache, prefix, out):
        _decode_updates(NotificationBytes.FromString(data).update, cache, prefix, out)
    get = cache.get
    for key in n.delete:
        out.paths.append(get(key) or _new_path(cache, key, prefix))
        out.values.append(None)
    if len(out.values) > start:
        out.times.append(ts)
        out.runs.append(len(out.values) - start)


_UINT_TAG = 0x18  # TypedValue field 3 (uint_val), varint: the first byte of a counter's value
_JSON_TAGS = (b"\x52", b"\x5a")  # json_val (10), json_ietf_val (11): one update may become many leaves
_first_byte = operator.itemgetter(0)


def _decode_fast(data: bytes, count: int, cache: dict[bytes, str], prefix: bytes, out: wire.Columns) -> bool:
    """The ``count`` updates of the Notification ``data`` when each is a path and a value that is no JSON
    (counters, and the strings or bools beside them), without a Python object per counter: the merged
    views (:data:`_MergedUints`, else :data:`_Merged`) list their paths and values in order, in C;
    other kinds of value are decoded one by one. False, with nothing appended, for the rest (an update
    without a path, a legacy ``value``, a JSON value, an empty or malformed value), which
    :func:`_decode_updates` then decodes.

    Each update has one path and one value exactly when both lists are as long as the updates (and,
    read as varints, the values are ``count`` pairs of uint_val's tag and a counter; or, among other
    kinds, the counters as many as the values that start with that tag). That holds for every encoder's
    output, where a message holds a field at most once and a oneof one member; a message that repeats a
    singular field, which the protobuf wire format allows but no encoder writes, could pair a path with a
    neighbour's value."""
    if not count:
        return True
    try:
        u = _MergedUints.FromString(data).update
        keys, pairs = u.path, u.val
        counters = len(keys) == count and len(pairs) == 2 * count and pairs[::2].count(_UINT_TAG) == count
    except DecodeError:  # a value that is no run of varints (a float, a string): not counters only
        counters = False
    try:
        if counters:
            values: Any = pairs[1::2]
        else:  # counters among other kinds (oper-status beside them): the others one by one
            m = _Merged.FromString(data).update
            keys, vals = m.path, m.val
            if len(keys) != count or len(vals) != count or m.value:
                return False
            vals = list(vals)
            tags = bytes(map(_first_byte, vals))  # IndexError: an empty TypedValue
            uints = _UintValues.FromString(b"".join(vals)).uint_val
            if len(uints) != tags.count(_UINT_TAG) or any(t in tags for t in _JSON_TAGS):
                return False
            it = iter(uints)
            values = [next(it) if t == _UINT_TAG else gnmi_paths.decode_value(gnmi_pb2.TypedValue.FromString(v))
                      for t, v in zip(tags, vals)]
    except (DecodeError, IndexError):  # malformed or empty: the one-by-one decode says what it is
        return False
    paths = list(map(cache.get, keys))
    if None in paths:  # paths new to the cache (the first interval of a device model)
        paths = [p if p is not None else _new_path(cache, k, prefix) for p, k in zip(paths, keys)]
    out.paths += paths
    out.values += values
    return True


def _decode_updates(updates: Any, cache: dict[bytes, str], prefix: bytes, out: wire.Columns) -> None:
    """Updates one by one (NotificationBytes ``update``): any value kind, JSON flattened to leaves."""
    paths, values = out.paths, out.values
    add_path, add_value, get = paths.append, values.append, cache.get
    for u in updates:
        key = u.path
        path = get(key) or _new_path(cache, key, prefix)
        tv = u.val
        kind = tv.WhichOneof("value")
        if kind == "uint_val":  # counters
            add_path(path)
            add_value(tv.uint_val)
            continue
        if kind is None and u.HasField("value"):  # gNMI < 0.4: Value{bytes, type}
            value = _legacy_value(u.value)
        else:
            value = gnmi_paths.decode_value(tv)
        if isinstance(value, (dict, list)):
            leaves: list[tuple[str, object]] = []
            gnmi_paths.flatten_json(path, value, leaves)
            paths += [p for p, _ in leaves]
            values += [v for _, v in leaves]  # type: ignore[misc]
        else:
            add_path(path)
            add_value(value)


def _legacy_value(v: gnmi_pb2.Value) -> object:
    import json

    if v.type in (gnmi_pb2.JSON, gnmi_pb2.JSON_IETF):
        return json.loads(v.value)
    return v.value.decode(errors="replace")


# ---- batching -----------------------------------------------------------------------------------------


def linger_until(now: float) -> float:
    """When a batch started at ``now`` is published: at least LINGER_S later, on a grid of LINGER_S shared by
    every batcher, so the timers of all devices whose updates arrived in one slot fire in one loop
    iteration and their batches go out in one socket write, their acks in few reads. Each wakeup of the
    loop costs more CPU than a batch's publish on small VMs (~75 µs on a 2-vCPU microVM, issue 20), and
    one timer per device update was one wakeup per device update, its ack another."""
    return math.ceil((now + LINGER_S) / LINGER_S) * LINGER_S


class Batcher:
    """Gathers one subscription's samples (as columns) and publishes them as one batch per device update."""

    def __init__(self, ctx: CollectorContext, subscription: str) -> None:
        self.ctx, self.subscription = ctx, subscription
        self.buf = wire.Columns()
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self._timer: asyncio.TimerHandle | None = None

    async def add(self, samples: wire.Columns | None, *, flush: bool = False) -> None:
        if len(self.buf) >= MAX_PENDING:
            self.room.clear()
            await self.room.wait()
        if samples:
            if self.buf:
                self.buf.extend(samples)
            else:  # the first notification of an update: taken as it is, not copied
                self.buf = samples
        if flush or len(self.buf) >= MAX_BATCH:
            self._kick()
        elif self.buf and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(linger_until(loop.time()), self._kick)

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.ready.set()

    async def run(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                buf, self.buf = self.buf, wire.Columns()
                self.room.set()
                for chunk in buf.chunks(MAX_BATCH):
                    await self.ctx.publish.batch(self.subscription, chunk)
                    n = len(chunk)
                    del chunk  # published: not kept while the next awaits run
                    await attempt_ok(self.ctx, n, self.subscription)
                    if task.cancelling():  # a cancellation swallowed inside a library's wait_for
                        raise asyncio.CancelledError
                del buf  # nor while waiting for the next update
        finally:
            if self._timer is not None:
                self._timer.cancel()


# ---- a session ----------------------------------------------------------------------------------------


async def _fetch_certificate(host: str, port: int) -> tuple[bytes, str]:
    """For tls = skip-verify: the server's certificate (then trusted as is) and a name it is valid for."""
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID, NameOID

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        async with asyncio.timeout(RPC_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    except TimeoutError:
        raise SessionError("timeout", "timeout", f"TLS handshake with {host}:{port} timed out") from None
    except (OSError, ssl.SSLError) as e:
        raise SessionError("unreachable", "session_down", f"TLS connect to {host}:{port}: {e}") from None
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    cert = x509.load_der_x509_certificate(der)
    name = host
    try:
        sans = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        dns = sans.get_values_for_type(x509.DNSName)
        if dns:
            name = dns[0]
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns:
            name = str(cns[0].value)
    return ssl.DER_cert_to_PEM_cert(der).encode(), name


def _read_file(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SessionError("error", "error", f"cannot read {what} {path}: {e.strerror}") from None


def keepalive_of(device: wire.Device) -> float:
    """The keepalive ping period to start with: the device tag ``gnmi-keepalive``, else KEEPALIVE_S."""
    if "gnmi-keepalive" not in device.tags:
        return KEEPALIVE_S
    try:
        return parse_duration(device.tags["gnmi-keepalive"], "tag gnmi-keepalive")
    except InvalidInput as e:
        raise SessionError("error", "error", str(e)) from None


async def open_channel(ctx: CollectorContext, keepalive_s: float | None = None) -> grpc.aio.Channel:
    d, cred = ctx.device, ctx.credential
    target = f"[{d.address}]:{d.port}" if ":" in d.address else f"{d.address}:{d.port}"
    options = list(CHANNEL_OPTIONS)
    if keepalive_s is not None:
        options = [(k, int(keepalive_s * 1000) if k == "grpc.keepalive_time_ms" else v) for k, v in options]
    if d.tls == "off":
        return grpc.aio.insecure_channel(target, options=options)
    key = _read_file(cred.tls_key if cred else None, "client key")
    chain = _read_file(cred.tls_cert if cred else None, "client certificate")
    if d.tls == "skip-verify":
        root, name = await _fetch_certificate(d.address, d.port)
        options.append(("grpc.ssl_target_name_override", name))
    else:
        root = _read_file(cred.tls_ca if cred else None, "CA bundle")  # None: the system's roots
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    return grpc.aio.secure_channel(target, creds, options=options)


def call_metadata(ctx: CollectorContext) -> tuple[tuple[str, str], ...]:
    cred = ctx.credential
    return (("username", cred.username), ("password", cred.password)) if cred else ()


async def capabilities(stub: gnmi_pb2_grpc.gNMIStub, metadata: tuple[tuple[str, str], ...]) -> gnmi_pb2.CapabilityResponse:
    """The Capabilities RPC, bounded; failures raise :class:`SessionError` (also used by discovery)."""
    try:
        caps = await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=metadata, timeout=RPC_TIMEOUT_S)
    except grpc.aio.AioRpcError as e:
        raise _classify(e, "Capabilities") from None
    if caps is None:  # grpc.aio returns None for a response it cannot deserialize
        raise SessionError("error", "error", "Capabilities: the device sent a malformed message")
    return caps


def choose_encoding(device: wire.Device, caps: gnmi_pb2.CapabilityResponse) -> tuple[int, str]:
    """The encoding to ask for, and a note when the ``gnmi-encoding`` tag could not be obeyed.

    The tag wins when Capabilities offers that encoding (or offers none: such devices usually mean
    PROTO and take what they are given). A tag naming an encoding the device does not offer would only
    get ``UNIMPLEMENTED`` on every Subscribe, so the best offered encoding is used and the note says so."""
    wanted = device.tags.get("gnmi-encoding", "").lower()
    supported = set(caps.supported_encodings)
    note = ""
    if wanted in _ENCODINGS:
        if not supported or _ENCODINGS[wanted] in supported:
            return _ENCODINGS[wanted], ""
        offered = ", ".join(gnmi_pb2.Encoding.Name(e) for e in sorted(supported) if e in gnmi_pb2.Encoding.values())
        note = f"tag gnmi-encoding={wanted} ignored: the device offers only {offered or 'unknown encodings'}"
    for enc in (gnmi_pb2.PROTO, gnmi_pb2.JSON_IETF, gnmi_pb2.JSON):
        if enc in supported:
            return enc, note
    if note:  # nothing we can decode is offered: ask for what the tag says, the device's error will tell
        return _ENCODINGS[wanted], note
    return gnmi_pb2.PROTO, note  # devices that list nothing usually mean PROTO


def models_of(caps: gnmi_pb2.CapabilityResponse, limit: int = 12) -> str:
    """The models a device lists in Capabilities, short enough for an error line."""
    names = sorted({m.name for m in caps.supported_models if m.name})
    if not names:
        return "the device lists no models in Capabilities"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return "the device serves " + ", ".join(names[:limit]) + more


class _Watch:
    """When a subscription's next message is due, as one ``asyncio.timeout`` the reader holds.

    SAMPLE streams must say something every interval (max(3 × interval, interval + grace)). ON_CHANGE
    and TARGET_DEFINED streams may be silent for hours once their initial state has arrived: many
    targets ignore ``heartbeat_interval``, so their liveness is the transport's (gRPC keepalive pings,
    CHANNEL_OPTIONS), not the application's. A POLL subscription is due an answer after each Poll
    request it sends (``arm``); between polls it may be silent."""

    def __init__(self, first_s: float, then_s: float | None) -> None:
        self.first_s, self.then_s = first_s, then_s
        self.cm: asyncio.Timeout | None = None
        self.armed_s = first_s  # the length of the current deadline (for the error message)

    def start(self, cm: asyncio.Timeout) -> None:
        self.cm = cm
        self._set(self.first_s)

    def got_data(self) -> None:
        self._set(self.then_s)

    def arm(self, s: float) -> None:
        if self.cm is not None and self.cm.when() is None:
            self._set(s)

    def _set(self, s: float | None) -> None:
        if self.cm is not None:
            self.cm.reschedule(None if s is None else asyncio.get_running_loop().time() + s)
            self.armed_s = s or self.armed_s


class _Attempt:
    """What one Subscribe call has received so far."""

    def __init__(self) -> None:
        self.messages = 0
        self.samples = 0
        self.dropped = 0
        self.synced = False


# Matchers by subscription paths, shared by all sessions: a matcher is a pure function of its paths and
# caches its answers per path string, so 2,000 devices of one model parse each sample path once, not
# once per device (cProfile, 300 devices: 144,000 path parses at start-up, 18 of 36 profiled seconds).
_MATCHERS: dict[tuple[str, ...], Callable[[str], bool]] = {}


def _shared_matcher(paths: list[str]) -> Callable[[str], bool]:
    key = tuple(paths)
    m = _MATCHERS.get(key)
    if m is None:
        if len(_MATCHERS) >= 1000:
            _MATCHERS.clear()
        m = _MATCHERS[key] = gnmi_paths.matcher(paths)
    return m


class GnmiSession:
    """One channel to a device and one Subscribe per subscription.

    The session is up (``session_up``) when the device delivers data or a sync_response, not when it
    answers Capabilities: a device that refuses every Subscribe never looked up. A subscription that
    fails (refused, matched nothing, ended) is retried alone with backoff while the others deliver; the
    session ends when nothing delivers any more or the transport fails, and is then reopened."""

    def __init__(self, ctx: CollectorContext, keepalive_s: float | None = None) -> None:
        self.ctx = ctx
        self.keepalive_s = keepalive_s
        self.metadata = call_metadata(ctx)
        self.delivered = False  # did this session publish anything (resets the backoff)
        self.up = False  # session_up published
        self.detail = ""
        self.models = ""
        self.failing: set[str] = set()
        self._matchers: dict[str, Callable[[str], bool]] = {}

    async def run(self) -> None:
        channel = await open_channel(self.ctx, self.keepalive_s)
        try:
            stub = gnmi_pb2_grpc.gNMIStub(channel)
            stub.Subscribe = subscribe_call(channel)  # responses as SubscribeResponseRaw
            caps = await capabilities(stub, self.metadata)
            encoding, note = choose_encoding(self.ctx.device, caps)
            self.models = models_of(caps)
            self.detail = f"gNMI {caps.gNMI_version or '?'}, {gnmi_pb2.Encoding.Name(encoding)}"
            # not kept for the session's life: real targets list hundreds of models (tens of kB of upb each)
            del caps
            if note:
                self.detail += f" ({note})"
                log.warning("%s: %s", self.ctx.device.name, note)
            subs = self.ctx.device.subscriptions
            for sub in subs:
                self.ctx.stats.subscription(sub.name)  # known from the start: "starting" until it answers
            async with asyncio.TaskGroup() as tg:
                for sub in subs:
                    tg.create_task(self._subscription_loop(stub, sub, encoding, len(subs)))
                # The body waits instead of ending at once: Python 3.11's TaskGroup leaves the parent's
                # cancel count raised when a child fails after the body ended, which would make the
                # cancelling() check in run() misread a failure as a release.
                await asyncio.get_running_loop().create_future()
        finally:
            await channel.close(grace=None)

    async def _data(self, sub: wire.Subscription) -> None:
        """The device delivered something for ``sub``: the session is up, the subscription is not failing."""
        self.failing.discard(sub.name)
        if not self.up:
            self.up = True
            await self.ctx.publish.event("session_up", self.detail)

    async def _subscription_loop(self, stub: gnmi_pb2_grpc.gNMIStub, sub: wire.Subscription, encoding: int,
                                 total: int) -> None:
        attempt = 0
        while True:
            att = _Attempt()
            try:
                await self._subscription(stub, sub, encoding, att)
            except SessionError as e:
                if e.status in ("auth_failed", "unreachable"):
                    raise  # the login or the transport: the whole session
                self.failing.add(sub.name)
                if len(self.failing) >= total:  # nothing delivers: the session ends and says why (run())
                    self.ctx.stats.subscription_failed(sub.name, e.status, str(e))
                    raise
                log.info("%s: %s", self.ctx.device.name, e)
                await attempt_failed(self.ctx, e.status, str(e), sub.name)
            if att.samples:
                attempt = 0
            await asyncio.sleep(backoff(attempt, cap=BACKOFF_CAP_S))
            attempt += 1

    def _request(self, sub: wire.Subscription, encoding: int, list_mode: int) -> gnmi_pb2.SubscribeRequest:
        interval_ns = int(sub.interval_s * 1e9)
        entries = []
        for p in sub.paths:
            entry = gnmi_pb2.Subscription(path=gnmi_paths.to_proto(p))
            if list_mode == gnmi_pb2.SubscriptionList.STREAM:
                entry.mode = _MODES[sub.mode]
                if sub.mode == "on_change":
                    entry.heartbeat_interval = interval_ns
                else:
                    entry.sample_interval = interval_ns
            entries.append(entry)
        return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
            subscription=entries, mode=list_mode, encoding=encoding))

    async def _subscription(self, stub: gnmi_pb2_grpc.gNMIStub, sub: wire.Subscription, encoding: int,
                            att: _Attempt) -> None:
        """One attempt of one subscription, with its batcher's publisher beside it; either one's failure
        ends both (no TaskGroup: its ExceptionGroup would hide the SessionError from the retry loop)."""
        batcher = Batcher(self.ctx, sub.name)
        if sub.mode == "once":
            reader = self._once(stub, sub, encoding, batcher, att)
        elif sub.mode == "poll":
            reader = self._poll(stub, sub, encoding, batcher, att)
        else:
            reader = self._stream(stub, sub, encoding, batcher, att)
        tasks = {asyncio.ensure_future(reader), asyncio.ensure_future(batcher.run())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
        except grpc.aio.AioRpcError as e:  # a write on a call the device already failed
            raise _classify(e, f"Subscribe {sub.name}") from None
        except asyncio.InvalidStateError:  # a write on a call the device already ended without error
            raise SessionError("error", "error", f"Subscribe {sub.name}: the device ended the stream") from None
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _stream(self, stub: gnmi_pb2_grpc.gNMIStub, sub: wire.Subscription, encoding: int, batcher: Batcher,
                      att: _Attempt) -> None:
        silence = max(3 * sub.interval_s, sub.interval_s + WATCHDOG_GRACE_S)
        watch = _Watch(silence, silence if sub.mode == "sample" else None)
        call = stub.Subscribe(metadata=self.metadata)
        try:
            await call.write(self._request(sub, encoding, gnmi_pb2.SubscriptionList.STREAM))
            await self._read(call, batcher, sub, watch, att, f"Subscribe {sub.name}", until_sync=False)
            raise SessionError("error", "error", f"Subscribe {sub.name}: the device ended the stream")
        finally:
            call.cancel()

    async def _poll(self, stub: gnmi_pb2_grpc.gNMIStub, sub: wire.Subscription, encoding: int, batcher: Batcher,
                    att: _Attempt) -> None:
        """One reader for the whole call and a Poll request every interval. A round is not read "until
        sync_response": many targets send sync_response after the first round only, so the batcher's
        pause ends a round and the watch only asks that each Poll gets an answer in time."""
        call = stub.Subscribe(metadata=self.metadata)
        watch = _Watch(RPC_TIMEOUT_S, None)
        what = f"Poll {sub.name}"
        reader = asyncio.ensure_future(self._read(call, batcher, sub, watch, att, what, until_sync=False))
        try:
            await call.write(self._request(sub, encoding, gnmi_pb2.SubscriptionList.POLL))
            while True:
                await asyncio.wait([reader], timeout=sub.interval_s)
                if reader.done():
                    reader.result()  # raises the reader's error
                    raise SessionError("error", "error", f"{what}: the device ended the stream")
                await call.write(gnmi_pb2.SubscribeRequest(poll=gnmi_pb2.Poll()))
                watch.arm(RPC_TIMEOUT_S)
        except grpc.aio.AioRpcError as e:  # a write on a call that failed
            raise _classify(e, what) from None
        finally:
            reader.cancel()
            call.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def _once(self, stub: gnmi_pb2_grpc.gNMIStub, sub: wire.Subscription, encoding: int, batcher: Batcher,
                    att: _Attempt) -> None:
        request = self._request(sub, encoding, gnmi_pb2.SubscriptionList.ONCE)
        while True:
            started = time.monotonic()
            call = stub.Subscribe(metadata=self.metadata)
            try:
                await call.write(request)
                await call.done_writing()
                once = _Attempt()
                await self._read(call, batcher, sub, _Watch(RPC_TIMEOUT_S, RPC_TIMEOUT_S), once,
                                 f"Once {sub.name}", until_sync=True)
                att.samples += once.samples
            finally:
                call.cancel()
            await asyncio.sleep(max(0.0, sub.interval_s - (time.monotonic() - started)))

    def _matcher(self, sub: wire.Subscription) -> Callable[[str], bool]:
        m = self._matchers.get(sub.name)
        if m is None:
            m = self._matchers[sub.name] = _shared_matcher(sub.paths)
        return m

    def _nothing(self, sub: wire.Subscription, what: str, att: _Attempt) -> SessionError:
        extra = (f"; {att.dropped} samples outside the subscription's paths were dropped" if att.dropped else "")
        return SessionError("error", "error", f"{what}: paths matched nothing ({', '.join(sub.paths)}); "
                                              f"{self.models}{extra}")

    async def _read(self, call: grpc.aio.StreamStreamCall, batcher: Batcher, sub: wire.Subscription, watch: _Watch,
                    att: _Attempt, what: str, *, until_sync: bool) -> bool:
        """Read responses into the batcher. True at sync_response (when ``until_sync``), False at the end
        of the stream; raises SessionError for errors, for an answer that matched nothing, and when the
        watch runs out. Samples outside ``sub``'s paths (a device that ignores the requested paths) are
        counted and dropped, never stored under the wrong subscription."""
        match = self._matcher(sub)
        sub_stats = self.ctx.stats.subscription(sub.name)
        try:
            async with asyncio.timeout(None) as deadline:
                watch.start(deadline)
                while True:
                    # nothing of the last update outlives it: a decoded 40 kB notification is ~360 kB of
                    # upb, and 2,000 sessions each holding their last one while they wait are ~0.7 GB
                    resp = samples = kept = None
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        await batcher.add(None, flush=True)
                        return False
                    if resp is None:  # grpc.aio's answer to bytes that are no SubscribeResponse
                        raise SessionError("error", "error", f"{what}: the device sent a malformed message")
                    att.messages += 1
                    kind = resp.WhichOneof("response")
                    if kind == "update":
                        samples = kept = wire.Columns()
                        try:
                            decode_notification(resp.update, samples)
                        except (ValueError, UnicodeDecodeError) as e:  # bad JSON value, unparsable path
                            self.ctx.stats.malformed += 1
                            self.ctx.stats.last_error = f"{what}: dropped a malformed notification ({e})"[:300]
                            continue
                        except DecodeError:  # an update that is no gnmi.Update, as grpc.aio's None above
                            raise SessionError("error", "error", f"{what}: the device sent a malformed message") from None
                        if not all(map(match.known, samples.paths)):  # type: ignore[attr-defined]  # (C loop)
                            kept = samples.keep([match(p) for p in samples.paths])
                        if len(kept) < len(samples):
                            self._dropped(sub, sub_stats, att, len(samples) - len(kept), samples.paths, match)
                        if not kept:  # an empty notification (or only foreign samples) is no sign of life
                            continue
                        watch.got_data()
                        att.samples += len(kept)
                        await self._data(sub)
                        await batcher.add(kept)
                        self.delivered = True
                    elif kind == "sync_response":
                        if not att.synced and not att.samples:
                            raise self._nothing(sub, what, att)
                        att.synced = True
                        watch.got_data()
                        await self._data(sub)
                        await batcher.add(None, flush=True)
                        if until_sync:
                            return True
                    elif kind == "error":
                        raise SessionError("error", "error", f"{what}: device error {resp.error.message}")
        except TimeoutError:
            if att.messages and not att.samples:
                raise self._nothing(sub, what, att) from None
            raise SessionError("timeout", "timeout", f"{what}: no data for {watch.armed_s:g}s") from None
        except grpc.aio.AioRpcError as e:
            raise _classify(e, what) from None
        finally:
            watch.cm = None

    def _dropped(self, sub: wire.Subscription, sub_stats: SubscriptionStats, att: _Attempt, n: int,
                 paths: list[str], match: Callable[[str], bool]) -> None:
        if not sub_stats.dropped:
            first = next(p for p in paths if not match(p))
            log.warning("%s: subscription %s: the device sent samples outside its paths (e.g. %s); dropped",
                        self.ctx.device.name, sub.name, first)
        sub_stats.dropped += n
        att.dropped += n


async def run(ctx: CollectorContext) -> None:
    """Collect one device until cancelled; device faults are reported, never raised."""
    attempt = 0
    announced = ""  # the last failure event published: repeated identical failures are not re-published
    keepalive: float | None = None
    while True:
        session = GnmiSession(ctx, keepalive)
        cap = BACKOFF_CAP_S
        try:
            if keepalive is None:
                keepalive = session.keepalive_s = keepalive_of(ctx.device)
            await session.run()
            raise SessionError("error", "error", "every subscription ended")
        except* SessionError as group:
            err = _first(group)
            cap = AUTH_BACKOFF_CAP_S if err.status == "auth_failed" else BACKOFF_CAP_S
            message = str(err)
            if err.too_many_pings and keepalive is not None:
                # as grpc-core does within one channel, but remembered across sessions: the device's policy
                # (one ping per 5 minutes by default in gRPC and Go servers) is learned once
                slower = min(keepalive * 2, KEEPALIVE_MAX_S)
                message += (f" every {keepalive:g}s; pinging every {slower:g}s from now on (the device tag "
                            f"gnmi-keepalive sets the starting period)")
                keepalive = slower
            await _failed(ctx, session, err.status, err.kind, message, announced)
            announced = err.kind if not session.up else ""
        except* Exception as group:  # anything else (gRPC internals, a bug): reported, retried, never raised
            err2 = _first(group)
            log.warning("%s: unexpected %r", ctx.device.name, err2)
            await _failed(ctx, session, "error", "error", f"{type(err2).__name__}: {err2}", announced)
            announced = "error"
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Cancelled while a subscription failed: a 3.11 TaskGroup then raises the failure, not the
            # cancellation. The lease wants this collector gone, so go.
            raise asyncio.CancelledError
        if session.delivered:
            attempt = 0
        delay = backoff(attempt, cap=cap)
        attempt += 1
        log.debug("%s: retrying in %.1fs", ctx.device.name, delay)
        await asyncio.sleep(delay)


def _first(group: BaseExceptionGroup) -> Exception:
    leaves: list[Exception] = []

    def walk(g: BaseException) -> None:
        if isinstance(g, BaseExceptionGroup):
            for e in g.exceptions:
                walk(e)
        else:
            leaves.append(g)  # type: ignore[arg-type]

    walk(group)
    return leaves[0]


async def _failed(ctx: CollectorContext, session: GnmiSession, status: str, kind: str, message: str,
                  announced: str) -> None:
    await attempt_failed(ctx, status, message)
    ctx.stats.session_lost(status)
    repeated = not session.up and kind == announced
    log.log(logging.DEBUG if repeated else logging.INFO, "%s: %s", ctx.device.name, message)
    if session.up:  # the session was up: it is now down, whatever the reason
        await ctx.publish.event("session_down", message)
        if kind != "session_down":
            await ctx.publish.event(kind, message)
    elif kind != announced:
        await ctx.publish.event(kind, message)

