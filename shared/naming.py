"""Subjects, KV keys and the reversible device-name encoding.

Device names are hostnames or addresses (``leaf-01.dc1.example.net``, ``10.0.0.1``, ``2001:db8::1``).
Dots separate NATS subject tokens and most other characters are not allowed in KV keys, so a name is
encoded into one subject token that is also a valid KV key: letters, digits, ``-`` and ``_`` stand for
themselves, every other allowed character becomes ``=`` and two upper-case hex digits (``=`` itself
included, so decoding is unambiguous).
"""

from __future__ import annotations

import re

from .errors import InvalidInput

MAX_NAME_LENGTH = 128
# Characters a device or agent name may use: hostname and IP-literal characters.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_TOKEN_RE = re.compile(r"^(?:[A-Za-z0-9_\-]|=[0-9A-F]{2})+$")

BUCKET_DEVICES = "swtel_devices"
BUCKET_AGENTS = "swtel_agents"
BUCKET_LEASES = "swtel_leases"
BUCKET_HUBS = "swtel_hubs"  # the fleet-work election (hub/leader.py)
FLEET_WORK_KEY = "fleet-work"
BUCKET_OUTPUTS = "swtel_outputs"  # output definitions (hub/outputs)
STREAM_TELEMETRY = "SWTEL_TELEMETRY"
STREAM_EVENTS = "SWTEL_EVENTS"

TELEMETRY_ALL = "swtel.telemetry.>"
EVENT_ALL = "swtel.event.>"
CONFIG_ALL = "swtel.config.>"


def check_name(name: str, what: str = "device name") -> str:
    """Return ``name`` if it can be encoded, else raise :class:`InvalidInput` saying why."""
    if not name:
        raise InvalidInput(f"{what} is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} {name!r} is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"{what} {name!r} cannot be used: it must start with a letter or digit and contain only "
            "letters, digits and . _ : -"
        )
    return name


def encode_name(name: str) -> str:
    """Encode a device or agent name into one subject token / KV key (reversible)."""
    check_name(name)
    return "".join(c if c in _PLAIN else f"={ord(c):02X}" for c in name)


def decode_name(token: str) -> str:
    """Inverse of :func:`encode_name`; raises :class:`InvalidInput` for a token it never produces."""
    if not _TOKEN_RE.match(token):
        raise InvalidInput(f"{token!r} is not an encoded name")
    out: list[str] = []
    i = 0
    while i < len(token):
        c = token[i]
        if c == "=":
            out.append(chr(int(token[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(c)
            i += 1
    name = "".join(out)
    if encode_name(name) != token:  # e.g. "=41" for a plain "A": not canonical
        raise InvalidInput(f"{token!r} is not a canonical encoded name")
    return name


def telemetry_subject(device: str, subscription: str) -> str:
    return f"swtel.telemetry.{encode_name(device)}.{encode_name(subscription)}"


def event_subject(device: str, kind: str) -> str:
    return f"swtel.event.{encode_name(device)}.{kind}"


def config_subject(device: str) -> str:
    return f"swtel.config.{encode_name(device)}"


def ctl_subject(agent: str, verb: str) -> str:
    return f"swtel.ctl.{encode_name(agent)}.{verb}"


def device_from_subject(subject: str) -> str:
    """The device name of a ``swtel.<kind>.<device>[.…]`` subject."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != "swtel":
        raise InvalidInput(f"{subject!r} is not a switch-telemetry subject")
    return decode_name(parts[2])


def msg_id(device: str, token: int, seq: int) -> str:
    """``Nats-Msg-Id`` of a telemetry batch: JetStream drops a second copy inside its duplicate window."""
    return f"{device}:{token}:{seq}"
