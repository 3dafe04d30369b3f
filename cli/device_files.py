"""Reading inventory files for ``swtel device import`` and ``sync``: YAML or CSV, every error of every file
at once, each with file, line and field.

YAML: a list of devices, or a mapping with a ``devices`` list. CSV: a header row, then one device a row;
``tags`` is ``k=v;k=v`` and ``paths`` is ``;``-separated. Fields: name, address, protocol, port, platform,
credential, tags, interval, paths, pin, tls.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from swtel.shared import wire
from swtel.shared.errors import InvalidInput
from swtel.shared.inventory import make_device, parse_tags

FIELDS = ("name", "address", "protocol", "port", "platform", "credential", "tags", "interval", "paths", "pin", "tls")
REQUIRED = ("name", "address", "protocol")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an inventory file; ``str()`` is ``file:line: field 'x': why``."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {f'field {self.field!r}: ' if self.field else ''}{self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


class InvalidFiles(InvalidInput):
    """Every problem found in a set of inventory files, one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the inventory files, nothing was changed:\n  "
                         + "\n  ".join(map(str, problems)))


# libyaml's parser when PyYAML has it (its wheels do): ten times faster than the pure-Python one, which
# took most of a 10,000-device sync.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """A safe loader that remembers the line each mapping starts on (key ``__line__``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


class _Invalid(InvalidInput):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem), problem.field)
        self.problem = problem


def _fail(path: Path, line: int | None, field: str | None, message: str) -> _Invalid:
    return _Invalid(Problem(str(path), line, field, message))


def _device(path: Path, line: int, row: dict[str, Any]) -> wire.Device:
    problems = [Problem(str(path), line, k, f"unknown field (known: {', '.join(FIELDS)})")
                for k in sorted(str(k) for k in row if k not in FIELDS and k != "__line__")]
    problems += [Problem(str(path), line, f, "is required") for f in REQUIRED if row.get(f) in (None, "")]
    if problems:
        raise InvalidFiles(problems)
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


def _rows_yaml(path: Path, text: str, errors: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
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
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            errors.append(Problem(str(path), None, None, f"device #{i} must be a mapping, got {item!r}"))
            continue
        rows.append((item["__line__"], item))
    return rows


def _rows_csv(path: Path, text: str, errors: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
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
            errors.append(Problem(str(path), reader.line_num, None, "more values than header columns"))
            continue
        clean = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        rows.append((reader.line_num, {k: v for k, v in clean.items() if v not in (None, "")}))
    return rows


def _read_one(path: Path, errors: list[Problem]) -> list[tuple[wire.Device, int]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        errors.append(Problem(str(path), None, None, f"cannot read: {getattr(e, 'strerror', None) or e}"))
        return []
    try:
        if path.suffix.lower() == ".csv":
            rows = _rows_csv(path, text, errors)
        elif path.suffix.lower() in SUFFIXES:
            rows = _rows_yaml(path, text, errors)
        else:
            raise _fail(path, None, None, "unknown file type; use .yaml, .yml or .csv")
    except _Invalid as e:
        errors.append(e.problem)
        return []
    out = []
    for line, row in rows:
        try:
            out.append((_device(path, line, row), line))
        except InvalidFiles as e:
            errors.extend(e.problems)
        except _Invalid as e:
            errors.append(e.problem)
    return out


SUFFIXES = (".yaml", ".yml")


def inventory_files(paths: list[Path]) -> list[Path]:
    """The files named, and in each directory named every .yaml/.yml/.csv file below it, in name order."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in (*SUFFIXES, ".csv")
                                and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        elif p.exists():
            files.append(p)
        else:
            raise InvalidInput(f"{p}: no such file or directory")
    return files


def read_inventory(paths: list[Path], *, allow_empty: bool = False) -> list[wire.Device]:
    """Parse and validate every device in the files (directories are searched); raise :class:`InvalidFiles`
    with every problem of every file, or return the devices. A name given twice is a problem too."""
    errors: list[Problem] = []
    devices: list[wire.Device] = []
    seen: dict[str, str] = {}
    files = inventory_files(paths)
    for f in files:
        for dev, line in _read_one(f, errors):
            if dev.name in seen:
                errors.append(Problem(str(f), line, "name", f"duplicate device {dev.name!r} (first at {seen[dev.name]})"))
                continue
            seen[dev.name] = f"{f}:{line}"
            devices.append(dev)
    if errors:
        raise InvalidFiles(errors)
    if not devices and not allow_empty:
        where = ", ".join(map(str, paths))
        raise InvalidInput(f"{where}: no devices found" + ("" if files else " (no .yaml, .yml or .csv files)"))
    return devices


def read_devices(path: Path) -> list[wire.Device]:
    """Every device in one file; :class:`InvalidFiles` lists every problem in it."""
    return read_inventory([path])
