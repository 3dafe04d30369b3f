"""Logging for every ``swtel`` process: one format, one level setting, and third-party chatter kept down.

At INFO an operator reads what changed (claims, sessions, faults, summaries). Libraries that log each
command or packet at INFO (asyncssh logs every channel it opens) are raised to WARNING unless the level is
DEBUG; nats-py's own logger stays at WARNING (its errors reach us through callbacks).
"""

from __future__ import annotations

import logging
import sys

from .errors import InvalidInput

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY = ("asyncssh",)  # per-command INFO lines; shown at DEBUG only


def check_level(level: str) -> str:
    upper = str(level).strip().upper()
    if upper not in LEVELS:
        raise InvalidInput(f"log level {level!r} is unknown; use one of {', '.join(LEVELS)}", "log_level")
    return upper


def setup(level: str) -> None:
    """Configure the root logger (stderr) at ``level``; a second call only changes the levels."""
    lvl = getattr(logging, check_level(level))
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(lvl)
    logging.getLogger("nats").setLevel(logging.WARNING)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if lvl <= logging.DEBUG else logging.WARNING)
