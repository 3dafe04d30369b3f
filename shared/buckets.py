"""The KV buckets and streams switch-telemetry needs, and the idempotent ``swtel nats init``.

An existing bucket or stream whose configuration differs in a way that matters is reported, never
changed: changing a stream under running agents and hubs is an operator's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js import api
from nats.js.errors import NotFoundError

from . import naming
from .errors import IncompatibleConfig
from .settings import Settings

# Expiry notifications (KV limit markers) need nats-server >= 2.11.
MARKER_MIN_VERSION = (2, 11, 0)
MARKER_TTL_S = 1.0


@dataclass(frozen=True)
class StreamSpec:
    """What ``nats init`` makes; ``kv_bucket`` is set when the stream backs a KV bucket."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: float | None
    replicas: int
    history: int = 1
    max_bytes: int | None = None
    duplicate_window_s: float | None = None
    marker_ttl_s: float | None = None
    kv_bucket: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Outcome:
    name: str
    kind: str  # "kv" or "stream"
    action: str  # "created", "ok", "incompatible"
    detail: str = ""


def server_supports_markers(version: object) -> bool:
    """``version`` is nats-py's ServerVersion or a string such as ``"2.10.26"``."""
    if hasattr(version, "major"):
        parts = (version.major, version.minor, version.patch)  # type: ignore[attr-defined]
    else:
        try:
            parts = tuple(int(p) for p in str(version).split("-")[0].split(".")[:3])
        except ValueError:
            return False
    return tuple(parts) >= MARKER_MIN_VERSION


def specs(settings: Settings, *, replicas: int, markers: bool) -> list[StreamSpec]:
    marker = MARKER_TTL_S if markers else None
    kv = lambda bucket, **kw: StreamSpec(  # noqa: E731
        name=f"KV_{bucket}", subjects=(f"$KV.{bucket}.>",), replicas=replicas, kv_bucket=bucket, **kw
    )
    return [
        kv(naming.BUCKET_DEVICES, max_age_s=None, history=5, description="switch-telemetry inventory"),
        kv(
            naming.BUCKET_AGENTS,
            max_age_s=settings.presence_ttl_s,
            marker_ttl_s=marker,
            description="switch-telemetry agent presence (expires without heartbeat)",
        ),
        # history: the hub proves a batch's token genuine from the key's past revisions (hub/fencing.py)
        kv(naming.BUCKET_LEASES, max_age_s=None, marker_ttl_s=marker, history=settings.lease_history,
           description="switch-telemetry device leases"),
        kv(
            naming.BUCKET_HUBS,
            max_age_s=settings.presence_ttl_s,
            marker_ttl_s=marker,
            description="switch-telemetry fleet-work election (expires without refresh)",
        ),
        kv(naming.BUCKET_OUTPUTS, max_age_s=None, history=5, description="switch-telemetry outputs (hub/outputs)"),
        StreamSpec(
            name=naming.STREAM_TELEMETRY,
            subjects=(naming.TELEMETRY_ALL,),
            max_age_s=settings.stream_max_age_s,
            max_bytes=settings.stream_max_bytes,
            duplicate_window_s=settings.stream_duplicate_window_s,
            replicas=replicas,
            description="switch-telemetry telemetry batches",
        ),
        StreamSpec(
            name=naming.STREAM_EVENTS,
            subjects=(naming.EVENT_ALL, naming.CONFIG_ALL),
            max_age_s=7 * 86400.0,
            max_bytes=settings.stream_max_bytes // 4,
            duplicate_window_s=settings.stream_duplicate_window_s,
            replicas=replicas,
            description="switch-telemetry device events and config backups",
        ),
    ]


def _close(a: float | None, b: float | None) -> bool:
    return (a or 0) == (b or 0) or (a is not None and b is not None and abs(a - b) < 1e-3)


def differences(spec: StreamSpec, cfg: api.StreamConfig) -> list[str]:
    """What in an existing stream's config disagrees with the spec (only what matters for correctness)."""
    out = []
    if tuple(cfg.subjects or ()) != spec.subjects:
        out.append(f"subjects {cfg.subjects} != {list(spec.subjects)}")
    if not _close(cfg.max_age, spec.max_age_s):
        out.append(f"max age {cfg.max_age or 0:g}s != {spec.max_age_s or 0:g}s")
    if (cfg.num_replicas or 1) != spec.replicas:
        out.append(f"replicas {cfg.num_replicas or 1} != {spec.replicas}")
    if spec.kv_bucket and (cfg.max_msgs_per_subject or 1) != spec.history:
        out.append(f"history {cfg.max_msgs_per_subject} != {spec.history}")
    if spec.marker_ttl_s and not cfg.subject_delete_marker_ttl:
        out.append("expiry markers are off (subject_delete_marker_ttl unset)")
    if spec.max_bytes and (cfg.max_bytes or -1) != spec.max_bytes:
        out.append(f"max bytes {cfg.max_bytes} != {spec.max_bytes}")
    if spec.duplicate_window_s and not _close(cfg.duplicate_window, spec.duplicate_window_s):
        out.append(f"duplicate window {cfg.duplicate_window:g}s != {spec.duplicate_window_s:g}s")
    return out


def _history_only(spec: StreamSpec, cfg: api.StreamConfig, diff: list[str]) -> bool:
    return (spec.kv_bucket == naming.BUCKET_LEASES and len(diff) == 1 and diff[0].startswith("history ")
            and (cfg.max_msgs_per_subject or 1) < spec.history)


async def _create(js: JetStreamContext, spec: StreamSpec) -> None:
    if spec.kv_bucket:
        await js.create_key_value(
            api.KeyValueConfig(
                bucket=spec.kv_bucket,
                description=spec.description,
                history=spec.history,
                ttl=spec.max_age_s,
                replicas=spec.replicas,
                storage=api.StorageType.FILE,
                limit_marker_ttl=spec.marker_ttl_s,
            )
        )
    else:
        await js.add_stream(
            api.StreamConfig(
                name=spec.name,
                description=spec.description,
                subjects=list(spec.subjects),
                max_age=spec.max_age_s,
                max_bytes=spec.max_bytes,
                duplicate_window=spec.duplicate_window_s or 0,
                num_replicas=spec.replicas,
                storage=api.StorageType.FILE,
                discard=api.DiscardPolicy.OLD,
            )
        )


async def ensure(js: JetStreamContext, all_specs: list[StreamSpec], *, check_only: bool = False) -> list[Outcome]:
    """Create what is missing, check what exists. Raises :class:`IncompatibleConfig` listing every mismatch
    after everything compatible was created."""
    outcomes: list[Outcome] = []
    for spec in all_specs:
        kind = "kv" if spec.kv_bucket else "stream"
        name = spec.kv_bucket or spec.name
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            if check_only:
                outcomes.append(Outcome(name, kind, "missing"))
                continue
            await _create(js, spec)
            outcomes.append(Outcome(name, kind, "created"))
            continue
        diff = differences(spec, info.config)
        if diff and not check_only and _history_only(spec, info.config, diff):
            # keeping more revisions is harmless to running agents: raised in place (hub fencing needs it)
            info.config.max_msgs_per_subject = spec.history
            await js.update_stream(info.config)
            outcomes.append(Outcome(name, kind, "updated", f"history raised to {spec.history}"))
            continue
        outcomes.append(Outcome(name, kind, "incompatible" if diff else "ok", "; ".join(diff)))
    bad = [o for o in outcomes if o.action == "incompatible"]
    if bad:
        lines = "\n".join(f"  {o.kind} {o.name}: {o.detail}" for o in bad)
        raise IncompatibleConfig(
            f"existing configuration differs and was left unchanged:\n{lines}\n"
            "Fix the settings to match, or remove the bucket/stream deliberately (nats stream rm) and run init again."
        )
    return outcomes
