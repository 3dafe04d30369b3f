"""Reading inventory files for ``swtel device import``: YAML or CSV, every error with file, line and field.

YAML: a list of devices, or a mapping with a ``devices`` list. CSV: a header row, then one device a row;
``tags`` is ``k=v;k=v`` and ``paths`` is ``;``-separated. Fields: name, address, protocol, port, platform,
credential, tags, interval, paths, pin, tls.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from swtel.shared import wire
from swtel.shared.errors import InvalidInput
from swtel.shared.inventory import make_device, parse_tags

FIELDS = ("name", "address", "protocol", "port", "platform", "credential", "tags", "interval", "paths", "pin", "tls")
REQUIRED = ("name", "address", "protocol")


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line each mapping starts on (key ``__line__``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def _fail(path: Path, line: int | None, field: str | None, message: str) -> InvalidInput:
    where = f"{path}:{line}" if line else str(path)
    return InvalidInput(f"{where}: {f'field {field!r}: ' if field else ''}{message}")


def _device(path: Path, line: int, row: dict[str, Any]) -> wire.Device:
    unknown = sorted(k for k in row if k not in FIELDS and k != "__line__")
    if unknown:
        raise _fail(path, line, unknown[0], f"unknown field (known: {', '.join(FIELDS)})")
    for f in REQUIRED:
        if row.get(f) in (None, ""):
            raise _fail(path, line, f, "is required")
    tags = row.get("tags") or {}
    paths = row.get("paths") or []
    try:
        if isinstance(tags, str):
            tags = parse_tags(t for t in tags.split(";") if t.strip())
        elif not isinstance(tags, dict):
            raise InvalidInput("must be a mapping or k=v;k=v", "tags")
        if isinstance(paths, str):
            paths = [p.strip() for p in paths.split(";") if p.strip()]
        port = row.get("port")
        if port not in (None, ""):
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise InvalidInput(f"port {port!r} must be a number from 1 to 65535", "port") from None
        else:
            port = None
        return make_device(
            str(row["name"]),
            str(row["address"]),
            str(row["protocol"]),
            port=port,
            platform=str(row.get("platform") or "generic"),
            credential=(str(row["credential"]) if row.get("credential") else None),
            tags={str(k): str(v) for k, v in tags.items()},
            interval=row.get("interval") or None,
            paths=[str(p) for p in paths],
            pinned=(str(row["pin"]) if row.get("pin") else None),
            tls=str(row.get("tls") or "off"),
        )
    except InvalidInput as e:
        raise _fail(path, line, e.field, str(e)) from None


def _rows_yaml(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise _fail(path, mark.line + 1 if mark else None, None, f"not valid YAML: {getattr(e, 'problem', e)}") from None
    if isinstance(data, dict) and "devices" in data:
        data = data["devices"]
    if not isinstance(data, list):
        raise _fail(path, 1, None, "expected a list of devices (or a mapping with a 'devices' list)")
    rows = []
    for item in data:
        if not isinstance(item, dict):
            raise _fail(path, None, None, f"each device must be a mapping, got {item!r}")
        rows.append((item["__line__"], item))
    return rows


def _rows_csv(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines(), skipinitialspace=True)
    if not reader.fieldnames:
        raise _fail(path, 1, None, "empty file: expected a header row")
    header = [h.strip() for h in reader.fieldnames]
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        raise _fail(path, 1, unknown[0], f"unknown column (known: {', '.join(FIELDS)})")
    rows = []
    for row in reader:
        if None in row:
            raise _fail(path, reader.line_num, None, "more values than header columns")
        clean = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        rows.append((reader.line_num, {k: v for k, v in clean.items() if v not in (None, "")}))
    return rows


def read_devices(path: Path) -> list[wire.Device]:
    """Parse and validate every device in the file; raise on the first problem, naming file, line and field."""
    try:
        text = path.read_text()
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read: {e.strerror}") from None
    if path.suffix.lower() == ".csv":
        rows = _rows_csv(path, text)
    elif path.suffix.lower() in (".yaml", ".yml"):
        rows = _rows_yaml(path, text)
    else:
        raise InvalidInput(f"{path}: unknown file type; use .yaml, .yml or .csv")
    devices: list[wire.Device] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        dev = _device(path, line, row)
        if dev.name in seen:
            raise _fail(path, line, "name", f"duplicate device {dev.name!r} (first on line {seen[dev.name]})")
        seen[dev.name] = line
        devices.append(dev)
    if not devices:
        raise InvalidInput(f"{path}: no devices in file")
    return devices
