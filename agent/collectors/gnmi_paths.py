"""gNMI paths and values: string ↔ ``Path`` in both notations, and ``TypedValue`` → Python value.

Path strings are the gNMI path-conventions form, ``[origin:]/elem/elem[key=value][key2=value2]/leaf``;
a ``/`` inside ``[...]`` belongs to the key value (``interface[name=Ethernet1/1]``), ``]`` and ``\\`` in a
value are escaped with ``\\``. Formatting sorts keys, so one leaf always has one string (the series name).

Devices answer in either notation: ``elem`` (PathElem with keys, gNMI ≥ 0.4) or the deprecated
``element`` (a list of strings such as ``interface[name=eth0]``). Both are read; requests use ``elem``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from gnmi_pb import gnmi_pb2

from swtel.shared.errors import InvalidInput

Elems = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # ((name, ((key, value), ...)), ...)


# ---- strings ------------------------------------------------------------------------------------------


def _split_elems(text: str) -> list[str]:
    """Split on ``/`` outside brackets, honouring ``\\`` escapes inside them."""
    out, cur, depth, i = [], [], 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and depth and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == "[" and not depth:  # a "[" inside a key value is literal
            depth = 1
        elif c == "]" and depth:
            depth = 0
        if c == "/" and not depth:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if depth:
        raise InvalidInput(f"path {text!r} has an unclosed [")
    out.append("".join(cur))
    return [e for e in out if e]


def _parse_elem(text: str, whole: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    bracket = text.find("[")
    if bracket < 0:
        return text, ()
    name, rest, keys = text[:bracket], text[bracket:], []
    i = 0
    while i < len(rest):
        if rest[i] != "[":
            raise InvalidInput(f"path {whole!r}: unexpected {rest[i]!r} in element {text!r}")
        eq = rest.find("=", i)
        if eq < 0:
            raise InvalidInput(f"path {whole!r}: key in element {text!r} has no '='")
        key, j, value = rest[i + 1 : eq], eq + 1, []
        while j < len(rest) and rest[j] != "]":
            if rest[j] == "\\" and j + 1 < len(rest):
                j += 1
            value.append(rest[j])
            j += 1
        if j >= len(rest) or not key:
            raise InvalidInput(f"path {whole!r}: bad key in element {text!r}")
        keys.append((key, "".join(value)))
        i = j + 1
    if not name:
        raise InvalidInput(f"path {whole!r}: element {text!r} has no name")
    return name, tuple(sorted(keys))


def parse(text: str) -> tuple[str, Elems]:
    """``"openconfig:/a/b[k=v]"`` → ``("openconfig", (("a", ()), ("b", (("k", "v"),))))``."""
    origin = ""
    if not text.startswith("/"):
        head, sep, tail = text.partition(":")
        if sep and "/" not in head and "[" not in head:
            origin, text = head, tail
    return origin, tuple(_parse_elem(e, text) for e in _split_elems(text))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("]", "\\]")


def format_elems(elems: Elems, origin: str = "") -> str:
    parts = []
    for name, keys in elems:
        if keys:
            name += "".join(f"[{k}={_escape(v)}]" for k, v in keys)
        parts.append(name)
    text = "/" + "/".join(parts)
    return f"{origin}:{text}" if origin else text


def _bare(name: str) -> str:
    return name.rpartition(":")[2]  # "openconfig-interfaces:interfaces" → "interfaces"


def _under(elems: Elems, pattern: tuple[tuple[str, dict[str, str]], ...], i: int = 0, j: int = 0) -> bool:
    """Is the leaf ``elems`` at or below ``pattern`` (``*`` names and key values, ``...`` any depth)?"""
    while j < len(pattern):
        name, keys = pattern[j]
        if name == "...":
            return any(_under(elems, pattern, k, j + 1) for k in range(i, len(elems) + 1))
        if i >= len(elems):
            return False
        ename, ekeys = elems[i]
        if name != "*" and name != _bare(ename):
            return False
        if keys:
            have = dict(ekeys)
            if any(v != "*" and have.get(k) != v for k, v in keys.items()):
                return False
        i, j = i + 1, j + 1
    return True


def matcher(paths: list[str], cache_max: int = 100_000) -> Callable[[str], bool]:
    """A predicate on sample paths: is it at or below one of ``paths`` (a subscription's)? Module
    prefixes and origins are ignored, a missing key or ``*`` matches any value. Results are cached
    per path string (samples repeat the same few thousand paths)."""
    patterns = []
    for p in paths:
        try:
            _, elems = parse(p)
        except InvalidInput:
            continue
        patterns.append(tuple((_bare(n), dict(k)) for n, k in elems))
    cache: dict[str, bool] = {}

    def match(path: str) -> bool:
        hit = cache.get(path)
        if hit is None:
            try:
                _, elems = parse(path)
            except InvalidInput:
                hit = False
            else:
                hit = any(_under(elems, pat) for pat in patterns)
            if len(cache) >= cache_max:
                cache.clear()
            cache[path] = hit
        return hit

    match.known = cache.get  # type: ignore[attr-defined]  # the hot loop's shortcut: True for a known match
    return match


# ---- protobuf Path ------------------------------------------------------------------------------------


def to_proto(text: str, target: str = "") -> gnmi_pb2.Path:
    origin, elems = parse(text)
    path = gnmi_pb2.Path(origin=origin, target=target)
    for name, keys in elems:
        path.elem.add(name=name, key=dict(keys))
    return path


def elems_of(path: gnmi_pb2.Path) -> Elems:
    """Either notation → Elems (``elem`` wins when both are set)."""
    if path.elem:
        return tuple((e.name, tuple(sorted(e.key.items())) if e.key else ()) for e in path.elem)
    return tuple(_parse_elem(e, "/".join(path.element)) for e in path.element)


def path_string(prefix: Elems, path: gnmi_pb2.Path) -> str:
    return format_elems(prefix + elems_of(path))


# ---- values -------------------------------------------------------------------------------------------


def _json_scalar(v: Any) -> Any:
    # RFC 7951 encodes 64-bit integers (counters) as JSON strings; decimal64 too. Numeric strings become
    # numbers so a counter is a number whichever encoding the device chose.
    if isinstance(v, str):
        s = v[1:] if v[:1] == "-" else v
        if s.isdigit():
            return int(v)
        return v
    if isinstance(v, (bool, int, float)) or v is None:
        return v
    return json.dumps(v, separators=(",", ":"))  # a leaf-list or anything else: keep it readable


def _strip_module(name: str) -> str:
    return name.rpartition(":")[2]  # "openconfig-interfaces:in-octets" → "in-octets"


def flatten_json(base: str, value: Any, out: list[tuple[str, Any]]) -> None:
    """A JSON container under ``base`` → (leaf path, value) pairs. Lists of objects stay one string leaf:
    their keys are schema knowledge the collector does not have."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten_json(f"{base}/{_strip_module(k)}", v, out)
    else:
        out.append((base, _json_scalar(value)))


def decode_value(tv: gnmi_pb2.TypedValue) -> Any:
    """A TypedValue → bool | int | float | str | None, or a dict/list for JSON values (see flatten_json)."""
    kind = tv.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("json_ietf_val", "json_val"):
        return json.loads(getattr(tv, kind))
    if kind == "decimal_val":
        return tv.decimal_val.digits / 10**tv.decimal_val.precision
    if kind == "leaflist_val":
        return json.dumps([decode_value(e) for e in tv.leaflist_val.element], separators=(",", ":"))
    if kind in ("bytes_val", "proto_bytes"):
        return base64.b64encode(getattr(tv, kind)).decode()
    if kind == "any_val":
        return base64.b64encode(tv.any_val.SerializeToString()).decode()
    if kind == "float_val":
        return float(f"{tv.float_val:.7g}")  # float32 on the wire: drop the float64 noise
    return getattr(tv, kind)
