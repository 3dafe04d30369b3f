"""What every ``swtel`` command shares: settings from the root options, a NATS session, and output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import typer
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nats import errors as nats_errors
from nats.js import errors as nats_js_errors

from swtel.shared import settings as settings_mod
from swtel.shared.errors import InvalidInput, ServerUnavailable
from swtel.shared.inventory import Inventory
from swtel.shared.natsconn import connect

T = TypeVar("T")
# soft_wrap: a long line stays one line (a terminal wraps it; a pipe gets it whole, never cut at 80 columns)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def settings(ctx: typer.Context, **flags: Any) -> settings_mod.Settings:
    """Settings with the root options (``--nats``, ``--config``) and this command's flags applied."""
    root = ctx.find_root().obj or {}
    merged = {"nats_url": root.get("nats_url"), "log_level": root.get("log_level"), **flags}
    return settings_mod.load(merged, config_file=root.get("config"))


def run(coro: Awaitable[T]) -> T:
    """Run a command's coroutine; a NATS request that gets no answer becomes one clear line."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except (nats_errors.TimeoutError, nats_errors.NoRespondersError, nats_js_errors.ServiceUnavailableError) as e:
        raise ServerUnavailable(
            f"NATS did not answer in time ({type(e).__name__}): is JetStream enabled, and does a cluster have "
            "a quorum? Try again in a few seconds. (A server also drops what this NATS user may not do: "
            "writing the inventory needs the admin user.)"
        ) from None


@asynccontextmanager
async def connection(s: settings_mod.Settings) -> AsyncIterator[NATS]:
    nc = await connect(s, name="swtel-cli")
    try:
        yield nc
    finally:
        await nc.close()


@asynccontextmanager
async def jetstream(s: settings_mod.Settings) -> AsyncIterator[JetStreamContext]:
    async with connection(s) as nc:
        yield nc.jetstream(timeout=5)


@asynccontextmanager
async def inventory(s: settings_mod.Settings) -> AsyncIterator[Inventory]:
    async with jetstream(s) as js:
        yield await Inventory.open(js)


def read_password(from_stdin: bool) -> str:
    """The password from stdin's first line, or from a hidden prompt typed twice; without a terminal to
    prompt on, one line saying to use --password-stdin (getpass would warn, echo, then abort)."""
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the password on: pipe it in with --password-stdin")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)


def print_json(rows: Any) -> None:
    sys.stdout.write(json.dumps(rows, indent=2, sort_keys=False) + "\n")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "nothing to show") -> None:
    """A table: rich on a terminal; when piped, plain space-aligned columns at full width (a name is never
    cut to fit 80 columns, so ``grep`` and ``awk`` see every character)."""
    rows = list(rows)
    if not rows:
        err_console.print(f"[dim]{empty}[/dim]")
        return
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    if not console.is_terminal:
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        out = sys.stdout
        for r in (list(columns), *cells):
            out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
        out.flush()
        return
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for r in cells:
        table.add_row(*(Text(c) for c in r))  # data, not markup: gNMI paths hold [k=v]
    console.print(table)


def progress_bar(total: int, description: str) -> tuple[Any, Callable[[int], None]]:
    """A rich progress bar on stderr (silent when stderr is not a terminal) and its advance function."""
    from rich.progress import Progress

    prog = Progress(console=err_console, transient=True, disable=not err_console.is_terminal)
    task = prog.add_task(description, total=total)
    return prog, lambda n: prog.advance(task, n)


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
