"""Alert rules: what to watch (a device or a tag selection, a gNMI path pattern), the condition, and how to
notify. Validation lives here so the CLI, the HTTP API and the engine refuse the same mistakes with the
same one-line messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Literal, get_args

import msgspec

from swtel.shared.errors import InvalidInput

Condition = Literal["above", "below", "absent", "rate_increase"]
Severity = Literal["info", "warning", "critical"]
CONDITIONS: tuple[str, ...] = get_args(Condition)
SEVERITIES: tuple[str, ...] = get_args(Severity)

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
# one path element: a name (or *) and any number of [key=value] predicates (value may be *)
_ELEM_RE = re.compile(r"/([^/\[\]=]+)((?:\[[^\[\]=]+=[^\[\]]*\])*)")
_KEY_RE = re.compile(r"\[([^\[\]=]+)=([^\[\]]*)\]")


class Rule(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One alert rule. ``device`` and ``tags`` are exclusive: one device by name, or every device of the
    inventory whose tags contain all of ``tags``. ``threshold`` is the value for above/below, the counter
    rate per second for rate_increase, and the silence in seconds for absent."""

    name: str
    path: str
    condition: Condition
    threshold: float
    device: str | None = None
    tags: dict[str, str] = {}
    for_s: float = 0.0
    cooldown_s: float = 600.0
    severity: Severity = "warning"
    channels: list[str] = []
    enabled: bool = True
    id: int | None = None  # assigned by the database

    def selector(self) -> str:
        """How the rule picks devices, as a user wrote it: ``sw1`` or ``site=ams,role=leaf``."""
        return self.device or ",".join(f"{k}={v}" for k, v in sorted(self.tags.items()))

    def describe(self) -> str:
        """The condition as one short phrase for lists and notifications."""
        if self.condition == "absent":
            return f"no data for {format_duration(self.threshold)}"
        if self.condition == "rate_increase":
            return f"rate > {self.threshold:g}/s"
        return f"{'>' if self.condition == 'above' else '<'} {self.threshold:g}"

    def holds(self, value: float | None, rate_per_s: float | None, silent_s: float | None) -> bool | None:
        """Whether the condition is true for one series; ``None`` when the data cannot tell (no value, no rate)."""
        if self.condition == "absent":
            return None if silent_s is None else silent_s >= self.threshold
        if self.condition == "rate_increase":
            return None if rate_per_s is None else rate_per_s > self.threshold
        if value is None:
            return None
        return value > self.threshold if self.condition == "above" else value < self.threshold

    def selects(self, name: str, tags: Mapping[str, str]) -> bool:
        if self.device is not None:
            return name == self.device
        return all(tags.get(k) == v for k, v in self.tags.items())


def validate(rule: Rule) -> Rule:
    """Return ``rule`` if it is sound, else raise :class:`InvalidInput` naming the first problem."""
    if not _NAME_RE.fullmatch(rule.name):
        raise InvalidInput(f"rule name {rule.name!r} must be 1-64 letters, digits, _ . - (starting with a letter or digit)", "name")
    if (rule.device is None) == (not rule.tags):
        raise InvalidInput("a rule needs exactly one of --device NAME or --tag k=v", "selector")
    if rule.device is not None and not rule.device.strip():
        raise InvalidInput("--device must not be empty", "device")
    path_regex(rule.path)  # raises on a malformed pattern
    if rule.condition not in CONDITIONS:
        raise InvalidInput(f"condition {rule.condition!r} must be one of {', '.join(CONDITIONS)}", "condition")
    if rule.severity not in SEVERITIES:
        raise InvalidInput(f"severity {rule.severity!r} must be one of {', '.join(SEVERITIES)}", "severity")
    if rule.threshold != rule.threshold or rule.threshold in (float("inf"), float("-inf")):
        raise InvalidInput("threshold must be a finite number", "threshold")
    if rule.condition == "absent" and rule.threshold <= 0:
        raise InvalidInput("--absent needs a duration above zero, like 5m", "threshold")
    if rule.condition == "rate_increase" and rule.threshold < 0:
        raise InvalidInput("--rate-increase must be zero or more (per second)", "threshold")
    for what, v in (("--for", rule.for_s), ("--cooldown", rule.cooldown_s)):
        if not 0 <= v <= 7 * 86400:
            raise InvalidInput(f"{what} must be between 0 and 7d", what)
    rule.channels = list(dict.fromkeys(rule.channels))  # one notification per channel, however often named
    for ch in rule.channels:
        if not _NAME_RE.fullmatch(ch):
            raise InvalidInput(f"channel name {ch!r} must be 1-64 letters, digits, _ . -", "channels")
    return rule


def validate_name(name: str, what: str = "name") -> str:
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"{what} {name!r} must be 1-64 letters, digits, _ . - (starting with a letter or digit)", what)
    return name


def parse_duration(text: str, what: str) -> float:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"500ms"`` or plain seconds → seconds (zero allowed)."""
    m = _DURATION_RE.match(str(text))
    if not m:
        raise InvalidInput(f"{what} {text!r} is not a duration like 30s, 5m, 1h or 2d", what)
    return float(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_selector_tags(items: Iterable[str]) -> dict[str, str]:
    """``["site=ams", "role=leaf,rack=3"]`` → a dict; each item may hold several ``k=v`` joined by commas."""
    out: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise InvalidInput(f"tag {part!r} is not key=value", "tags")
            out[k.strip()] = v.strip()
    return out


@lru_cache(maxsize=1024)
def path_regex(pattern: str) -> re.Pattern[str]:
    """Compile a gNMI-style path pattern. ``*`` as a key value matches any value, ``*`` as an element name
    matches any one element, and an element written without keys matches it with any keys (gNMI's rule
    that a missing key is a wildcard): ``/interfaces/interface/state/oper-status`` matches every interface."""
    if not pattern.startswith("/") or pattern.endswith("/") and pattern != "/":
        raise InvalidInput(f"path {pattern!r} must start with / and not end with /", "path")
    pos, parts = 0, []
    while pos < len(pattern):
        m = _ELEM_RE.match(pattern, pos)
        if not m:
            raise InvalidInput(f"path {pattern!r} is malformed near {pattern[pos:pos + 20]!r}", "path")
        name, keys = m.group(1), m.group(2)
        elem = r"/[^/\[\]]+" if name == "*" else "/" + re.escape(name)
        if not keys:
            elem += r"(?:\[[^\[\]]*\])*"
        for k, v in _KEY_RE.findall(keys):
            elem += r"\[" + re.escape(k) + "=" + (r"[^\[\]]*" if v == "*" else re.escape(v)) + r"\]"
        parts.append(elem)
        pos = m.end()
    return re.compile("".join(parts))


def path_matches(pattern: str, path: str) -> bool:
    return path_regex(pattern).fullmatch(path) is not None
