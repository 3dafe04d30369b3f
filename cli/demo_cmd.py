"""``swtel demo``: the whole system on this machine, one command (see ``demo.py``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import typer

from .demo import Demo


def demo(
    devices: int = typer.Option(50, "--devices", min=1, max=5000, help="simulated switches"),
    agents: int = typer.Option(2, "--agents", min=1, max=16, help="collector agents"),
    port: int = typer.Option(8080, "--port", help="hub port (another free one is used if taken)"),
    protocol: str = typer.Option("mixed", "--protocol", help="gnmi, ssh, netconf or mixed"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="keep state here (default: a temp dir removed at exit)"),
    faults: bool = typer.Option(False, "--faults", help="add faulty devices (wrong password, hung, flapping) and "
                                "config changes every few minutes, so every state and page can be seen"),
    config_change_every: str = typer.Option("3m", "--config-change-every", hidden=True,
                                            help="with --faults: how often running configs change (tests)"),
) -> None:
    """Run NATS, a database, the simulator, the hub and agents together; Ctrl-C stops everything.

    Example: swtel demo --faults
    """
    if protocol not in ("gnmi", "ssh", "netconf", "mixed"):
        raise typer.BadParameter("use gnmi, ssh, netconf or mixed", param_hint="--protocol")
    temp = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="swtel-demo-")) if temp else data_dir
    try:
        asyncio.run(Demo(root, devices=devices, agents=agents, hub_port=port, protocol=protocol,
                         database_url=os.environ.get("SWTEL_DATABASE_URL"), faults=faults, config_change_every=config_change_every).run())
    finally:
        if temp:
            shutil.rmtree(root, ignore_errors=True)
