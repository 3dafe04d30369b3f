"""Splitting a gNMI path with keys into the series dictionary's ``path`` and ``keys`` columns."""

from __future__ import annotations

import re

_KEY_RE = re.compile(r"\[([^=\]]+)=((?:\\.|[^\]\\])*)\]")


def split_keys(name: str) -> tuple[str, dict[str, str]]:
    """``/a/b[name=Et1]/c`` → (``/a/b/c``, ``{"name": "Et1"}``); repeated key names keep the last value."""
    keys: dict[str, str] = {}

    def take(m: re.Match[str]) -> str:
        keys[m.group(1)] = m.group(2).replace("\\]", "]").replace("\\\\", "\\")
        return ""

    return _KEY_RE.sub(take, name), keys
