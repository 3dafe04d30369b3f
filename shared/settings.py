"""Settings: command-line flags, then ``SWTEL_*`` environment variables, then a TOML file, then defaults.

Every setting is a field of :class:`Settings`; its description is the one documented in
``docs/SETTINGS.md`` (a test keeps the two in step). The TOML file is ``--config FILE``, else
``$SWTEL_CONFIG``, else ``/etc/swtel/swtel.toml`` when it exists. Keys in the file are the field names,
either flat (``nats_url = "…"``) or grouped by their prefix (``[nats]`` ``url = "…"``).
Nothing is read at import time: call :func:`load`.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from .errors import InvalidInput

D = msgspec.Meta  # short alias: each field's description is its documentation

DEFAULT_CONFIG_PATH = Path("/etc/swtel/swtel.toml")
SECRET_FIELDS = frozenset({"nats_password", "nats_token"})


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # --- NATS ---
    nats_url: Annotated[str, D(description="NATS server URL(s), comma-separated for a cluster")] = (
        "nats://127.0.0.1:4222"
    )
    nats_creds: Annotated[str | None, D(description="NATS credentials file (JWT + nkey seed)")] = None
    nats_nkey: Annotated[str | None, D(description="NATS nkey seed file")] = None
    nats_user: Annotated[str | None, D(description="NATS user name")] = None
    nats_password: Annotated[str | None, D(description="NATS password (prefer an env var or the TOML file)")] = None
    nats_token: Annotated[str | None, D(description="NATS auth token")] = None
    nats_tls_ca: Annotated[str | None, D(description="CA bundle to verify the NATS server")] = None
    nats_tls_cert: Annotated[str | None, D(description="client certificate for NATS mutual TLS")] = None
    nats_tls_key: Annotated[str | None, D(description="client key for NATS mutual TLS")] = None
    nats_password_file: Annotated[
        str | None, D(description="file holding the NATS password, e.g. a systemd credential (used when nats_password is unset)")
    ] = None
    nats_inbox_prefix: Annotated[
        str,
        D(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
          description="subject prefix for replies; with nats/permissions.conf: _INBOX_agent, _INBOX_hub"),
    ] = "_INBOX"
    nats_replicas: Annotated[int, D(ge=1, le=5, description="replicas of buckets and streams (1 or 3)")] = 1
    stream_max_age_s: Annotated[float, D(gt=0, description="telemetry kept in JetStream at most this long")] = 86400.0
    stream_max_bytes: Annotated[int, D(gt=0, description="telemetry stream size limit in bytes")] = 2 * 1024**3
    stream_duplicate_window_s: Annotated[float, D(gt=0, description="JetStream de-duplication window")] = 120.0
    # --- agent ---
    agent_id: Annotated[str, D(description="this agent's id (default: the host name)")] = ""
    agent_capacity: Annotated[int, D(ge=1, description="most devices this agent holds; also its hashing weight")] = 10_000
    agent_tags: Annotated[dict[str, str], D(description="agent tags, k=v,k=v in the environment")] = {}
    heartbeat_s: Annotated[float, D(gt=0, description="presence heartbeat period")] = 1.0
    presence_ttl_s: Annotated[float, D(gt=0, description="presence expires after this long without a heartbeat")] = 3.0
    fence_margin_s: Annotated[float, D(ge=0, description="stop collecting this long before presence could expire")] = 0.5
    claim_stagger_s: Annotated[float, D(ge=0, description="rank-k agent waits k times this before claiming")] = 0.25
    settle_s: Annotated[float, D(ge=0, description="a better-ranked agent must be alive this long before handover")] = 5.0
    handover_per_s: Annotated[float, D(gt=0, description="rate limit of voluntary handovers per agent")] = 500.0
    secrets_file: Annotated[str | None, D(description="TOML file of credentials, [ref] username/password")] = None
    # --- hub ---
    database_url: Annotated[str, D(description="PostgreSQL/TimescaleDB DSN")] = "postgresql://127.0.0.1:5432/swtel"
    hub_host: Annotated[str, D(description="hub listen address")] = "127.0.0.1"
    hub_port: Annotated[int, D(ge=0, le=65535, description="hub listen port")] = 8080
    retention_days: Annotated[int, D(ge=1, description="raw points kept this many days")] = 30
    hub_ingest_workers: Annotated[int, D(ge=1, le=64, description="concurrent fetch-and-write loops per hub")] = 2
    hub_fetch_batch: Annotated[int, D(ge=1, le=10000, description="telemetry messages pulled (and written in one transaction) at a time")] = 256
    hub_consumer: Annotated[str, D(description="durable JetStream consumer name shared by all hubs")] = "swtel-hub"
    hub_ack_wait_s: Annotated[float, D(gt=0, description="unacknowledged telemetry is redelivered after this long (set when the consumer is created)")] = 30.0
    chunk_interval_hours: Annotated[int, D(ge=1, le=168, description="TimescaleDB chunk interval (plain PostgreSQL: partitions are always daily)")] = 24
    partitions_ahead_days: Annotated[int, D(ge=1, le=60, description="plain PostgreSQL: daily partitions created this many days ahead")] = 3
    compress_after_days: Annotated[int, D(ge=1, description="TimescaleDB: compress raw chunks and aggregates older than this")] = 2
    retention_1m_days: Annotated[int, D(ge=1, description="1 minute aggregates kept this many days (both backends)")] = 90
    retention_1h_days: Annotated[int, D(ge=1, description="1 hour aggregates kept this many days (both backends)")] = 730
    aggregate_lag_s: Annotated[float, D(ge=0, le=86400, description="1 m / 1 h aggregates materialize only buckets that ended at least this long ago; newer data is read from raw points (both backends)")] = 300.0
    hub_id: Annotated[str, D(description="this hub's id in the fleet-work election (default: host name and process id)")] = ""
    hub_fleet_work: Annotated[bool, D(description="take part in the fleet-work election (maintenance, alerting); false: never lead")] = True
    alert_interval_s: Annotated[float, D(gt=0, description="the elected hub evaluates alert rules this often")] = 60.0
    alert_history_days: Annotated[int, D(ge=1, description="alert history and delivered notifications kept this many days")] = 90
    live_allowed_origins: Annotated[str, D(description="extra browser origins allowed on /ws/live, comma-separated (same-origin always allowed; * allows any)")] = ""
    live_frame_interval_s: Annotated[float, D(ge=0.05, description="least time between two WebSocket frames to one client")] = 0.2
    live_send_timeout_s: Annotated[float, D(gt=0, description="a client whose frame is not taken within this long is disconnected")] = 5.0
    live_history_points: Annotated[int, D(ge=0, description="recent points kept per numeric series in the live cache")] = 60
    live_history_series: Annotated[int, D(ge=0, description="series that keep recent history in the live cache (first come); the rest keep their latest value")] = 250_000
    live_max_series: Annotated[int, D(ge=1, description="series the live cache holds at most; further ones are counted and ignored")] = 3_000_000
    live_max_devices_per_client: Annotated[int, D(ge=1, description="devices one WebSocket client may watch at once")] = 64
    # --- ingest integrity (docs/STORAGE.md: fencing, limits, dead letters) ---
    lease_history: Annotated[int, D(ge=2, le=64, description="revisions kept per key in swtel_leases, so a hub can prove an older holder's token genuine (swtel nats init raises it on an existing bucket)")] = 16
    fence_grace_s: Annotated[float, D(ge=0, description="a holder's samples stamped up to this long after its lease ended are still stored (device vs NATS clock)")] = 1.0
    ingest_max_samples: Annotated[int, D(ge=1, description="samples stored per telemetry batch; the excess is refused and counted (batch_limit)")] = 10_000
    ingest_max_string_bytes: Annotated[int, D(ge=1, le=1_048_576, description="longest string value stored (UTF-8 bytes); longer ones are refused and counted (string_too_long)")] = 4096
    ingest_max_series_per_device: Annotated[int, D(ge=1, description="series one device may have; new ones past it are refused and counted (series_limit), existing ones keep flowing")] = 50_000
    dead_letter_days: Annotated[int, D(ge=1, description="dead letters (messages refused by the hub) kept this many days")] = 14
    # --- general ---
    log_level: Annotated[str, D(description="DEBUG, INFO, WARNING or ERROR")] = "INFO"
    # --- SSH and NETCONF collectors ---
    ssh_host_key_policy: Annotated[
        Literal["known_hosts", "accept-new", "off"],
        D(description="SSH host keys: known_hosts (verify), accept-new (trust on first use, saved) or off (lab only)"),
    ] = "known_hosts"
    ssh_known_hosts: Annotated[str | None, D(description="known_hosts file for SSH/NETCONF (default ~/.ssh/known_hosts)")] = None
    ssh_timeout_s: Annotated[float, D(gt=0, description="SSH/NETCONF connect, login and per-command/RPC timeout")] = 10.0
    ssh_keepalive_s: Annotated[float, D(ge=0, description="SSH keepalive interval (0 = off); 3 missed replies drop the session")] = 15.0
    # --- config backup (agent job, docs/CONFIG-BACKUP.md) ---
    config_backup_interval_s: Annotated[float, D(ge=0, description="running configuration of SSH/NETCONF devices fetched this often (0 = off)")] = 3600.0
    config_backup_first_s: Annotated[float, D(ge=0, description="first config backup this long after the device is claimed")] = 10.0
    # --- discovery and device status ---
    discovery_interval_s: Annotated[float, D(gt=0, description="discovery (facts, capabilities, interfaces) runs when a device is claimed, then this often")] = 21600.0
    device_down_after: Annotated[int, D(ge=1, description="consecutive failed attempts before a device is reported down (device_down event)")] = 3
    # --- hub authentication ---
    hub_session_ttl_s: Annotated[float, D(gt=0, description="a hub login session lasts this long")] = 43200.0
    hub_secure_cookies: Annotated[
        Literal["auto", "always", "never"],
        D(description="Secure flag on hub cookies: auto (when the request came over HTTPS), always, never"),
    ] = "auto"
    hub_login_failures: Annotated[int, D(ge=1, description="failed logins per minute allowed per user and per client address")] = 5

    def redacted(self) -> dict[str, Any]:
        """All settings as a dict with secrets masked: safe to print or log."""
        out = msgspec.structs.asdict(self)
        for k in SECRET_FIELDS:
            if out.get(k):
                out[k] = "***"
        return out

    @property
    def resolved_agent_id(self) -> str:
        return self.agent_id or socket.gethostname().split(".")[0]

    @property
    def resolved_hub_id(self) -> str:
        return self.hub_id or f"{socket.gethostname().split('.')[0]}-{os.getpid()}"


FIELDS = {f.name: f for f in msgspec.structs.fields(Settings)}


def describe() -> list[tuple[str, str, str]]:
    """(name, default, description) of every setting, for docs and ``swtel --help`` pages."""
    info = msgspec.inspect.type_info(Settings)
    rows = []
    for f in info.fields:
        desc = ""
        t = f.type
        if isinstance(t, msgspec.inspect.Metadata):
            desc = (t.extra_json_schema or {}).get("description", "") or ""
        rows.append((f.name, repr(f.default) if f.default is not msgspec.NODEFAULT else "", desc))
    return rows


def _parse_tags(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        if not sep or not k:
            raise InvalidInput(f"tag {part!r} is not key=value")
        out[k] = v
    return out


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise InvalidInput(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"config file {path}: {e}") from None
    flat: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and k not in FIELDS:  # [nats] url = "…" is nats_url
            flat.update({f"{k}_{sub}": subv for sub, subv in v.items()})
        else:
            flat[k] = v
    unknown = sorted(set(flat) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return flat


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FIELDS:
        key = f"SWTEL_{name.upper()}"
        if key in env:
            out[name] = _parse_tags(env[key]) if name == "agent_tags" else env[key]
    return out


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Merge defaults < TOML file < environment < flags (``None`` flag values are ignored)."""
    env = os.environ if env is None else env
    path = config_file or env.get("SWTEL_CONFIG")
    merged: dict[str, Any] = {}
    if path:
        merged.update(_from_toml(Path(path)))
    elif DEFAULT_CONFIG_PATH.is_file():
        merged.update(_from_toml(DEFAULT_CONFIG_PATH))
    merged.update(_from_env(env))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise InvalidInput(f"bad setting: {e}") from None

