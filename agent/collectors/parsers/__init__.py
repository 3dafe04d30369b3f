"""Per-platform CLI knowledge for the SSH collector: which commands answer which poll group, how to turn
paging off and get privileges, what an error looks like, and parsers from each output to normalised samples.

Each platform module defines:

- ``COMMANDS``: poll group -> list of :class:`Command`. A command is one measurement with its variants in
  order of preference: JSON first where the platform offers it (``show interfaces | json``), then text
  (``show interfaces``). The session uses the first variant the device accepts and remembers it;
  each command of a poll stands alone (one that fails does not lose the others' samples).
- ``PAGING_OFF`` (sent once in a shell; a refusal is logged, not fatal), ``SHELL`` (collected through an
  interactive shell by default), ``ENABLE`` (send ``enable`` when the shell prompt ends in ``>``),
  ``ERROR_RE`` (output that means the command was refused, besides :data:`COMMON_ERRORS`).
- ``parse(command, text, ts) -> list[Sample]`` for any variant's command string (tests, benches).

Text is parsed with ntc-templates (TextFSM templates maintained by the community and tested on real
outputs) where a template captures what we need; where none does (byte counters are in no ntc-templates
``show interfaces`` template) a hand-written parser stays, and the module says why. Parsers raise
:class:`ParseError` for output they cannot read; they are tested on captures of real devices shipped in
installed packages (fakenos) and on recorded outputs in ``tests/fixtures/cli/<platform>/``.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from swtel.shared.wire import Sample

from ..polling import DeviceError

Parser = Callable[[str, int], list[Sample]]


class ParseError(DeviceError):
    """A command's output is not what the platform prints."""


# What devices print for a command they refuse, on the first line of the output: Cisco/Arista ``% Invalid
# input``, ``% Incomplete command``, ``% Ambiguous command``, ``% Authorization failed``, ``% Permission
# denied``; Junos ``error: …``/``syntax error``; several simple CLIs ``Unknown command``.
COMMON_ERRORS = re.compile(r"^(% ?(Invalid|Incomplete|Ambiguous|Unknown|Authorization|Permission|Bad|Error)"
                           r"|(syntax )?error:|syntax error|unknown command|invalid command|command not found"
                           r"|command authorization failed)", re.IGNORECASE)


@dataclass(frozen=True)
class Variant:
    command: str
    parse: Parser
    json: bool = False


@dataclass(frozen=True)
class Command:
    """One measurement and the variants that can answer it, in order of preference."""

    variants: tuple[Variant, ...]

    @functools.cached_property  # read for every command of every poll
    def name(self) -> str:
        """How failures are reported: the command without its output filter (``show interfaces``)."""
        return self.variants[0].command.split(" | ")[0]


def command(*variants: tuple[str, Parser]) -> Command:
    """``command(("show x | json", parse_json), ("show x", parse_text))``; ``| json`` marks JSON variants."""
    return Command(tuple(Variant(c, guarded(c, p), json="| json" in c or "display json" in c) for c, p in variants))


def guarded(command: str, fn: Parser) -> Parser:
    """Any surprise inside a parser is a :class:`ParseError` naming the command, never a crash."""

    @functools.wraps(fn)
    def parse(text: str, ts: int) -> list[Sample]:
        try:
            return fn(text, ts)
        except ParseError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise ParseError(f"{command!r}: unexpected output ({type(e).__name__}: {e})") from None

    return parse


def variants(commands: dict[str, list[Command]]) -> dict[str, Parser]:
    return {v.command: v.parse for cmds in commands.values() for c in cmds for v in c.variants}


def command_strings(mod: ModuleType) -> list[str]:
    """Every variant's command string of a platform (tests, benches)."""
    return list(variants(mod.COMMANDS))


_BY_COMMAND: dict[int, dict[str, Parser]] = {}  # id(COMMANDS) -> its variants: platform tables are module constants


def dispatch(commands: dict[str, list[Command]], command: str, text: str, ts: int) -> list[Sample]:
    table = _BY_COMMAND.get(id(commands))
    if table is None:
        table = _BY_COMMAND[id(commands)] = variants(commands)
    fn = table.get(command)
    if fn is None:
        raise ParseError(f"no parser for {command!r}")
    return fn(text, ts)


def is_error(mod: ModuleType, text: str) -> bool:
    first = text.lstrip()
    return bool(mod.ERROR_RE.search(first) or COMMON_ERRORS.search(first))


def load_json(command: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ParseError(f"{command!r}: output is not JSON") from None


def json_object(fn: Callable[[dict[str, Any], int], list[Sample]], command: str) -> Parser:
    """A parser of one JSON object (EOS, NX-OS ``| json``); anything else is a :class:`ParseError`."""

    def parse(text: str, ts: int) -> list[Sample]:
        doc = load_json(command, text)
        if not isinstance(doc, dict):
            raise ParseError(f"{command!r}: expected a JSON object")
        return fn(doc, ts)

    return parse


# ---- ntc-templates ------------------------------------------------------------------------------------

_ECHO = re.compile(r"^[^\s#>]{1,80}[#>] ?\S.*\n")  # "ceos1#show  interface": a capture's own prompt line


def strip_echo(text: str) -> str:
    """Drop a leading blank line and a prompt-and-command line, as copied captures (and some devices) print."""
    text = text.lstrip("\n")
    return _ECHO.sub("", text, count=1) if _ECHO.match(text) else text


@functools.cache
def _template(name: str) -> str:
    import ntc_templates

    path = Path(ntc_templates.__file__).parent / "templates" / f"{name}.textfsm"
    return path.read_text()


def ntc(template: str, command: str, text: str) -> list[dict[str, Any]]:
    """Rows of ntc-templates' ``<template>.textfsm`` (e.g. ``cisco_ios_show_processes_cpu``) for ``text``.

    The template is read once and compiled per call (a TextFSM object holds parse state); the index lookup
    of ``ntc_templates.parse.parse_output`` is skipped because the platform module names its template."""
    import textfsm

    try:
        fsm = textfsm.TextFSM(io.StringIO(_template(template)))
        return [{k.lower(): v for k, v in row.items()} for row in fsm.ParseTextToDicts(strip_echo(text))]
    except textfsm.TextFSMError as e:
        raise ParseError(f"{command!r}: not the layout ntc-templates {template} reads "
                         f"({str(e).splitlines()[-1][:120]})") from None


def number(value: Any) -> int:
    """``"1,234"`` / ``"12"`` / ``12.0`` -> 12 (ntc-templates values are strings)."""
    return int(float(str(value).replace(",", "")))


def platform(name: str) -> ModuleType:
    from . import eos, generic, ios, iosxr, junos, nxos

    return {"eos": eos, "nxos": nxos, "junos": junos, "iosxr": iosxr, "ios": ios, "iosxe": ios}.get(name, generic)


# ---- discovery: each platform module also has FACTS_COMMANDS and facts(outputs) -> dict ---------------
# ``facts`` gets {command: output} for the FACTS_COMMANDS that answered and returns the fields of
# wire.DeviceFacts it could read (vendor, model, os_version, serial, hostname, uptime_s, interfaces).

_UNITS = {"year": 365 * 86400, "week": 7 * 86400, "day": 86400, "hour": 3600, "minute": 60, "second": 1}


def uptime_text(text: str) -> int | None:
    """``1 week, 2 days, 3 hours, 4 minutes`` → seconds; None when no unit is found."""
    found = re.findall(r"(\d+)\s+(year|week|day|hour|minute|second)s?", text)
    return sum(int(n) * _UNITS[u] for n, u in found) if found else None
