"""Output definitions (``swtel_outputs/<name>``, JSON) and their validation; the store used by the CLI and hub.

An output names a destination and how telemetry maps to it. It holds a credential *reference* only: the
secret is resolved on the hub host (``$CREDENTIALS_DIRECTORY``, ``SWTEL_CRED_<REF>_*`` or the
``secrets_file`` setting, as for devices), never stored in KV.
"""

from __future__ import annotations

import re
import time
from typing import Literal, get_args
from urllib.parse import urlsplit

import msgspec
from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError, NotFoundError

from swtel.shared import naming
from swtel.shared.errors import AlreadyExists, InvalidInput, NotFound, UserError

BUCKET = naming.BUCKET_OUTPUTS
Kind = Literal["remote_write", "influx", "scrape"]
KINDS: tuple[str, ...] = get_args(Kind)
StateMode = Literal["map", "drop", "info"]
MetricType = Literal["counter", "gauge", "drop"]
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_REF_RE = re.compile(r"^[A-Za-z0-9_.\-/]{1,128}$")


class Rule(msgspec.Struct, frozen=True, omit_defaults=True):
    """Override the default mapping for paths matching ``match`` (keys removed, ``*`` matches one element)."""

    match: str
    name: str = ""  # metric name ("" keeps the default name)
    type: MetricType | None = None  # counter, gauge, or drop the path


class OutputDef(msgspec.Struct, omit_defaults=True):
    """``swtel_outputs/<name>``: one output. Read by every hub; written by ``swtel output``."""

    name: str
    kind: Kind
    url: str = ""  # remote_write: the write URL; influx: the server's base URL; scrape: unused
    paused: bool = False
    auth: Literal["none", "basic", "bearer"] = "none"
    credential: str | None = None  # reference; bearer: the credential's password is the token
    tls_ca: str | None = None  # CA bundle (a path on the hub host) to verify an https destination
    influx_version: Literal[1, 2] = 1
    database: str = ""  # influx v1 database, v2 bucket
    org: str = ""  # influx v2 organisation
    device_tags: list[str] = []  # inventory tags exported as labels (opt-in)
    states: StateMode = "map"
    rules: list[Rule] = []
    batch: int = 256  # stream messages taken per fetch (one or a few requests)
    start: Literal["new", "all"] = "new"  # where a new output's position starts in the stream
    max_series: int = 500_000  # scrape: series held at most
    created_ns: int = 0
    v: int = 1

    @property
    def consumer(self) -> str:
        return consumer_name(self.name)


def consumer_name(name: str) -> str:
    return f"swtel-out-{name}"


decoder = msgspec.json.Decoder(OutputDef)
encoder = msgspec.json.Encoder()


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise InvalidInput(f"output name {name!r} must be 1-48 lower-case letters, digits, - or _, starting with a "
                           "letter or digit", "name")
    return name


def parse_rule(text: str) -> Rule:
    """``MATCH=NAME[:TYPE]`` or ``MATCH=:TYPE`` or ``MATCH=drop``, e.g.
    ``/interfaces/interface/state/counters/in-octets=ifHCInOctets:counter``."""
    match, sep, rhs = text.partition("=")
    if not sep or not match.startswith("/"):
        raise InvalidInput(f"mapping rule {text!r} is not /path=name[:counter|gauge] or /path=drop", "rules")
    if rhs == "drop":
        return Rule(match=match, type="drop")
    name, _, typ = rhs.partition(":")
    if name and not _METRIC_RE.match(name):
        raise InvalidInput(f"mapping rule {text!r}: {name!r} is not a valid metric name", "rules")
    if typ and typ not in ("counter", "gauge"):
        raise InvalidInput(f"mapping rule {text!r}: type must be counter or gauge", "rules")
    if not name and not typ:
        raise InvalidInput(f"mapping rule {text!r} sets nothing", "rules")
    return Rule(match=match, name=name, type=typ or None)  # type: ignore[arg-type]


def make_output(name: str, kind: str, *, url: str = "", auth: str = "none", credential: str | None = None,
                tls_ca: str | None = None, influx_version: int = 1, database: str = "", org: str = "",
                device_tags: list[str] | None = None, states: str = "map", rules: list[str] | None = None,
                batch: int = 256, start: str = "new", max_series: int = 500_000) -> OutputDef:
    """Validate user input and build an :class:`OutputDef`; every problem is an :class:`InvalidInput`."""
    check_name(name)
    if kind not in KINDS:
        raise InvalidInput(f"output kind {kind!r} is unknown; use one of {', '.join(KINDS)}", "kind")
    if kind == "scrape":
        if url:
            raise InvalidInput("a scrape output has no URL: Prometheus scrapes the hub at /metrics/devices/<name>", "url")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"url {url!r} must be an http:// or https:// URL", "url")
        if parts.username or parts.password:
            raise InvalidInput("put no credentials in the URL: use --auth and --credential (a reference)", "url")
    if auth not in ("none", "basic", "bearer"):
        raise InvalidInput(f"auth {auth!r} must be none, basic or bearer", "auth")
    if (auth == "none") != (credential is None):
        raise InvalidInput("--auth basic|bearer needs --credential REF, and a credential needs --auth", "credential")
    if credential is not None and not _REF_RE.match(credential):
        raise InvalidInput(f"credential reference {credential!r} may use only letters, digits and _ . - /", "credential")
    if kind == "influx":
        if influx_version not in (1, 2):
            raise InvalidInput("influx version must be 1 or 2", "influx_version")
        if not database:
            raise InvalidInput("an influx output needs --database (v1 database, v2 bucket)", "database")
        if influx_version == 2 and not org:
            raise InvalidInput("an InfluxDB v2 output needs --org", "org")
    elif database or org:
        raise InvalidInput("--database and --org are for influx outputs", "database")
    for t in device_tags or []:
        if not _LABEL_RE.match(t) or t in ("device", "__name__"):
            raise InvalidInput(f"device tag {t!r} cannot be a label name", "device_tags")
    if states not in get_args(StateMode):
        raise InvalidInput(f"states {states!r} must be map, drop or info", "states")
    if not 1 <= batch <= 10_000:
        raise InvalidInput("batch must be between 1 and 10000 messages", "batch")
    if start not in ("new", "all"):
        raise InvalidInput("start must be new or all", "start")
    if not 1 <= max_series <= 50_000_000:
        raise InvalidInput("max series must be between 1 and 50000000", "max_series")
    return OutputDef(name=name, kind=kind, url=url, auth=auth, credential=credential,  # type: ignore[arg-type]
                     tls_ca=tls_ca, influx_version=influx_version, database=database, org=org,  # type: ignore[arg-type]
                     device_tags=list(device_tags or []), states=states,  # type: ignore[arg-type]
                     rules=[parse_rule(r) for r in rules or []], batch=batch, start=start,  # type: ignore[arg-type]
                     max_series=max_series, created_ns=time.time_ns())


def consumer_config(d: OutputDef) -> api.ConsumerConfig:
    """The output's durable consumer on the telemetry stream: its own position, acknowledged per message."""
    return api.ConsumerConfig(
        name=d.consumer,
        durable_name=d.consumer,
        description=f"switch-telemetry output {d.name} ({d.kind})",
        # explicit, not "all": an ack of the last message would also ack messages a stopping runner's last
        # pull took, and those would never reach the destination
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL if d.start == "all" else api.DeliverPolicy.NEW,
        ack_wait=30.0,
        max_ack_pending=20_000,
        max_deliver=-1,
        filter_subjects=[naming.TELEMETRY_ALL],
    )


class OutputStore:
    """The outputs bucket, for the CLI (writes: admin user) and the hub (reads)."""

    def __init__(self, js: JetStreamContext, kv: object) -> None:
        self.js = js
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> OutputStore:
        try:
            return cls(js, await js.key_value(BUCKET))
        except BucketNotFoundError:
            raise UserError(f"bucket {BUCKET} is missing: run `swtel nats init`") from None

    async def add(self, d: OutputDef) -> None:
        try:
            await self.kv.create(d.name, encoder.encode(d))  # type: ignore[attr-defined]
        except KeyWrongLastSequenceError:
            raise AlreadyExists(f"output {d.name!r} already exists (swtel output remove {d.name} first)") from None
        if d.kind != "scrape":  # the position starts now (or at the stream's start), even before a hub runs it
            await self.js.add_consumer(naming.STREAM_TELEMETRY, config=consumer_config(d))

    async def get(self, name: str) -> tuple[OutputDef, int]:
        try:
            e = await self.kv.get(name)  # type: ignore[attr-defined]
        except KeyNotFoundError:
            raise NotFound(f"output {name!r} does not exist") from None
        if e.value is None:
            raise NotFound(f"output {name!r} does not exist")
        return decoder.decode(e.value), e.revision

    async def list(self) -> list[OutputDef]:
        try:
            keys = await self.kv.keys()  # type: ignore[attr-defined]
        except NoKeysError:
            return []
        out = []
        for k in sorted(keys):
            try:
                out.append((await self.get(k))[0])
            except (NotFound, msgspec.ValidationError, msgspec.DecodeError):
                continue  # removed meanwhile, or written by hand and malformed
        return out

    async def set_paused(self, name: str, paused: bool) -> OutputDef:
        for _ in range(5):
            d, rev = await self.get(name)
            d.paused = paused
            try:
                await self.kv.update(name, encoder.encode(d), last=rev)  # type: ignore[attr-defined]
                return d
            except KeyWrongLastSequenceError:
                continue
        raise UserError(f"output {name!r} kept changing; try again")

    async def remove(self, name: str) -> None:
        d, _ = await self.get(name)
        await self.kv.delete(name)  # type: ignore[attr-defined]
        if d.kind != "scrape":
            try:
                await self.js.delete_consumer(naming.STREAM_TELEMETRY, d.consumer)
            except NotFoundError:
                pass
