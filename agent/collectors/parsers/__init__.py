"""Per-platform CLI knowledge for the SSH collector: which commands answer which poll group, how to turn
paging off, what the prompt looks like, and parsers from each command's output to normalised samples.

Each platform module defines ``COMMANDS`` (group -> commands), ``PAGING_OFF`` (sent once in a shell),
``SHELL`` (True when the platform is collected through an interactive shell by default), ``ERROR_RE``
(output that means the command failed) and ``parse(command, text, ts) -> list[Sample]``.
Parsers raise :class:`ParseError` for output they cannot read; they are tested on recorded outputs in
``tests/fixtures/cli/<platform>/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

from swtel.shared.wire import Sample

from ..polling import DeviceError


class ParseError(DeviceError):
    """A command's output is not what the platform prints."""


def load_json(command: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ParseError(f"{command!r}: output is not JSON") from None


def parse_json_object(parsers: dict[str, Callable[[dict[str, Any], int], list[Sample]]], command: str,
                      text: str, ts: int) -> list[Sample]:
    """The ``| json`` platforms (EOS, NX-OS): one JSON object per command, read by that command's parser;
    any surprise in it is a :class:`ParseError` naming the command."""
    doc = load_json(command, text)
    if not isinstance(doc, dict):
        raise ParseError(f"{command!r}: expected a JSON object")
    try:
        return parsers[command](doc, ts)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ParseError(f"{command!r}: unexpected output ({type(e).__name__}: {e})") from None


def platform(name: str) -> ModuleType:
    from . import eos, generic, iosxr, junos, nxos

    return {"eos": eos, "nxos": nxos, "junos": junos, "iosxr": iosxr}.get(name, generic)


# ---- discovery: each platform module also has FACTS_COMMANDS and facts(outputs) -> dict ---------------
# ``facts`` gets {command: output} for the FACTS_COMMANDS that answered and returns the fields of
# wire.DeviceFacts it could read (vendor, model, os_version, serial, hostname, uptime_s, interfaces).

_UNITS = {"year": 365 * 86400, "week": 7 * 86400, "day": 86400, "hour": 3600, "minute": 60, "second": 1}


def uptime_text(text: str) -> int | None:
    """``1 week, 2 days, 3 hours, 4 minutes`` → seconds; None when no unit is found."""
    import re

    found = re.findall(r"(\d+)\s+(year|week|day|hour|minute|second)s?", text)
    return sum(int(n) * _UNITS[u] for n, u in found) if found else None
