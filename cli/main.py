"""The ``swtel`` entry point: root options, sub-commands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from swtel.shared import logs
from swtel.shared.errors import SwtelError

from . import (
    agent_cmd,
    alert_cmd,
    deadletter_cmd,
    assign_cmd,
    config_cmd,
    db_cmd,
    demo_cmd,
    device_cmd,
    hub_cmd,
    lease_cmd,
    nats_cmd,
    output_cmd,
    run_cmd,
    sim_cmd,
    user_cmd,
)
from .common import err_console

app = typer.Typer(
    name="swtel",
    help="switch-telemetry: fleet-scale network telemetry collection.\n\n"
    "Example: swtel --nats nats://10.0.0.5:4222 device list --tag site=dc1",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # swtel --install-completion (bash, zsh, fish, PowerShell)
)
app.add_typer(nats_cmd.app, name="nats")
app.add_typer(device_cmd.app, name="device")
app.add_typer(agent_cmd.app, name="agent")
app.add_typer(lease_cmd.app, name="lease")
app.add_typer(sim_cmd.app, name="sim")
app.add_typer(hub_cmd.app, name="hub")
app.add_typer(db_cmd.app, name="db")
app.add_typer(alert_cmd.app, name="alert")
app.add_typer(deadletter_cmd.app, name="deadletter")
app.add_typer(config_cmd.app, name="config")
app.add_typer(user_cmd.app, name="user")
app.add_typer(assign_cmd.app, name="assign")
app.add_typer(output_cmd.app, name="output")
app.command("demo")(demo_cmd.demo)
app.command("run")(run_cmd.run)


@app.callback()
def root(
    ctx: typer.Context,
    nats_url: str | None = typer.Option(None, "--nats", help="NATS URL(s) (env SWTEL_NATS_URL; default nats://127.0.0.1:4222)"),
    config: Path | None = typer.Option(None, "--config", help="TOML settings file (env SWTEL_CONFIG)"),
    log_level: str | None = typer.Option(None, "--log-level", help="DEBUG, INFO, WARNING or ERROR (env SWTEL_LOG_LEVEL; default INFO)"),
) -> None:
    if log_level is not None:
        log_level = logs.check_level(log_level)
        logs.setup(log_level)  # also for short commands: --log-level DEBUG shows what they do
    ctx.obj = {"nats_url": nats_url, "config": config, "log_level": log_level}


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: user errors print one line on stderr and exit 2 (never a traceback)."""
    try:
        app(args=argv, prog_name="swtel")
    except SwtelError as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)  # paths hold [k=v]
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
