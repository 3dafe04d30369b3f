"""``swtel sim run``: serve simulated switches on loopback, optionally registering them in the inventory."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import typer

from swtel.agent.credentials import env_prefix
from swtel.agent.sim.model import Faults
from swtel.agent.sim.runner import HOST, SimRunner, SimSpec
from swtel.shared import wire
from swtel.shared.errors import InvalidInput
from swtel.shared.inventory import PLATFORMS, Inventory, parse_duration

from . import common

app = typer.Typer(help="The device simulator.", no_args_is_help=True)

FAULT_HELP = ("fault to inject, repeatable: wrong-password, hang, garbage, delay=SECONDS, drop=SECONDS "
              "(end each gNMI stream after that long), reset=SECONDS (counters restart at that age); "
              "gNMI quirks of real targets: no-heartbeat, poll-sync-once, encodings=proto|json|json_ietf[,…], "
              "ignore-paths, refuse-subscribe, empty-unknown")


_QUIRKS = {"no-heartbeat": "no_heartbeat", "poll-sync-once": "poll_sync_once", "ignore-paths": "ignore_paths",
           "refuse-subscribe": "refuse_subscribe", "empty-unknown": "empty_unknown"}


def parse_faults(items: list[str]) -> Faults:
    """``["delay=2", "hang"]`` → Faults; a bad item is a one-line error."""
    f = Faults()
    for item in items:
        name, _, value = item.partition("=")
        name = name.strip().replace("_", "-")
        try:
            if name == "wrong-password":
                f.wrong_password = True
            elif name == "hang":
                f.hang = True
            elif name == "garbage":
                f.garbage = True
            elif name == "delay":
                f.delay_s = parse_duration(value, "delay")
            elif name == "drop":
                f.drop_stream_after_s = parse_duration(value, "drop")
            elif name == "reset":
                f.counter_reset_at_s = parse_duration(value, "reset")
            elif name in _QUIRKS:
                setattr(f, _QUIRKS[name], True)
            elif name == "encodings":
                f.encodings = tuple(e.strip().lower() for e in value.split(",") if e.strip())
                if not f.encodings or set(f.encodings) - {"proto", "json", "json_ietf"}:
                    raise InvalidInput("encodings must be a list of proto, json, json_ietf")
            else:
                raise InvalidInput(f"fault {item!r} is unknown; {FAULT_HELP}")
        except InvalidInput as e:
            if "unknown" in str(e):
                raise
            raise InvalidInput(f"fault {item!r}: {e}") from None
    return f


async def register(inv: Inventory, devices: list[wire.Device]) -> tuple[int, int]:
    """Add the devices; ones that exist already (a restarted simulator) are updated. → (added, updated)."""
    existing = {d.name: d for d in await inv.list()}
    new = [d for d in devices if d.name not in existing]
    changed = [d for d in devices if d.name in existing and existing[d.name] != d]
    if new:
        await inv.add_many(new)
    for d in changed:
        await inv.modify(d.name, lambda old, d=d: d)
    return len(new), len(changed)


@app.command("run")
def run(
    ctx: typer.Context,
    devices: int = typer.Option(10, "--devices", min=1, max=20000, help="number of simulated switches"),
    protocol: str = typer.Option("gnmi", "--protocol", help="gnmi, ssh, netconf, snmp (v2c, community = --password) or mixed (gnmi, ssh, netconf round-robin)"),
    interfaces: int = typer.Option(48, "--interfaces", min=1, max=1024, help="interfaces per switch"),
    base_port: int = typer.Option(20000, "--base-port", help="device i listens on 127.0.0.1:base-port+i"),
    platform: str = typer.Option("generic", "--platform", help=f"one of {', '.join(PLATFORMS)}"),
    prefix: str = typer.Option("sim", "--name-prefix", help="device names are PREFIX-0000, PREFIX-0001, …"),
    username: str = typer.Option("admin", "--username", help="login the simulated switches accept"),
    password: str = typer.Option("admin", "--password", help="password the simulated switches accept"),
    reg: bool = typer.Option(False, "--register", help="add the devices to the inventory (updates existing ones)"),
    credential: str = typer.Option("sim", "--credential", help="credential reference written with --register"),
    interval: str = typer.Option("10s", "--interval", help="sample interval written with --register"),
    fault: list[str] = typer.Option([], "--fault", help=FAULT_HELP),
    faulty: int | None = typer.Option(None, "--faulty", min=0, help="only the last N devices get the faults (default: all)"),
    tls_dir: Path | None = typer.Option(None, "--tls-dir", help="serve gNMI over TLS; CA and certificates are written here"),
    config_change: str | None = typer.Option(None, "--config-change-every", help="edit every switch's running config this often (10m), to see config backups change"),
) -> None:
    """Serve simulated switches on 127.0.0.1 until Ctrl-C (SIGINT) or SIGTERM.

    Example: swtel sim run --devices 20 --protocol ssh --register
    """
    if platform not in PLATFORMS:
        raise InvalidInput(f"platform {platform!r} is unknown; use one of {', '.join(PLATFORMS)}")
    parse_duration(interval)
    tls = None
    if tls_dir is not None:
        from swtel.agent.sim import tlsgen
        from swtel.agent.sim.gnmi_target import TlsFiles

        material = tlsgen.generate()
        material.write(tls_dir)
        tls = TlsFiles(material.server_cert, material.server_key)
    spec = SimSpec(devices=devices, protocol=protocol, interfaces=interfaces, base_port=base_port, platform=platform,
                   prefix=prefix, username=username, password=password, faults=parse_faults(fault),
                   faulty=faulty, tls=tls, config_change_s=parse_duration(config_change, "--config-change-every") if config_change else None)
    runner = SimRunner(spec)
    s = common.settings(ctx) if reg else None

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runner.start()
        try:
            ports = sorted(runner.ports.values())
            common.err_console.print(
                f"serving {devices} simulated {protocol} switch(es) on {HOST} ports {ports[0]}..{ports[-1]}"
                + (f" (TLS, CA in {tls_dir})" if tls_dir else ""), highlight=False)
            if s is not None:
                async with common.inventory(s) as inv:
                    added, updated = await register(inv, runner.inventory(credential=credential, interval=interval))
                how = (f"{env_prefix(credential)}_COMMUNITY set to the simulator's --password" if protocol == "snmp"
                       else f"{env_prefix(credential)}_USERNAME / _PASSWORD set to the simulator's login")
                common.err_console.print(
                    f"registered: {added} added, {updated} updated. Agents resolve credential {credential!r}, e.g. {how}",
                    highlight=False)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            await runner.close()

    common.run(go())
