"""Config backup: the running configuration of an SSH or NETCONF device, fetched by the agent holding its
lease shortly after the claim and then every ``config_backup_interval_s``, published on
``swtel.config.<device>`` (JetStream). The hub stores a backup only when its content changed.

SSH: the platform's show command (below), run the way the collector runs commands (exec, or the
interactive shell for IOS-XR / ``ssh_mode=shell``). NETCONF: ``<get-config>`` of the running datastore,
stored as indented XML. gNMI devices are skipped: the simulator's (and many devices') Get has no
configuration-only view, see docs/CONFIG-BACKUP.md. The job uses its own short session, so a fetch never
waits behind the collector's polls; failures are logged once per streak and retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import xml.etree.ElementTree as ET
from functools import partial

from swtel.agent.collectors import netconf, parsers, polling, sshconn
from swtel.agent.collectors.base import CollectorContext, backoff
from swtel.agent.collectors.ssh import CliSession, use_shell
from swtel.agent.collectors.sshconn import SshOptions
from swtel.shared import wire
from swtel.shared.settings import Settings

from . import Job

log = logging.getLogger("swtel.agent.backup")

DEFAULT_COMMAND = "show running-config"  # eos, nxos, iosxr, generic
COMMANDS = {"junos": "show configuration", "srl": "info"}
GET_CONFIG = "<get-config><source><running/></source></get-config>"


def command_for(platform: str) -> str:
    return COMMANDS.get(platform, DEFAULT_COMMAND)


async def fetch_ssh(ctx: CollectorContext, opts: SshOptions) -> tuple[str, str]:
    platform = parsers.platform(ctx.device.platform)
    conn = await sshconn.connect(ctx.device, ctx.credential, opts)
    try:
        cli = CliSession(conn, platform, opts, use_shell(ctx.device, platform))
        await cli.open()
        return "text", await cli.command(command_for(ctx.device.platform))
    finally:
        await sshconn.close(conn)


async def fetch_netconf(ctx: CollectorContext, opts: SshOptions) -> tuple[str, str]:
    conn = await sshconn.connect(ctx.device, ctx.credential, opts)
    nc = netconf.NetconfSession(conn, opts, base11=ctx.device.tags.get("netconf_framing") != "1.0")
    try:
        await nc.open()
        reply = await nc.rpc(GET_CONFIG)
    finally:
        await nc.close()
        await sshconn.close(conn)
    return "xml", xml_text(reply.find(f"{{{netconf.NS_BASE}}}data"))


def xml_text(data: ET.Element | None) -> str:
    """The ``<data>`` contents, one element per line, so a text diff shows what changed."""
    if data is None:
        return ""
    ET.indent(data)
    return "".join(ET.tostring(child, encoding="unicode").rstrip() + "\n" for child in data)


FETCH = {"ssh": fetch_ssh, "netconf": fetch_netconf}


async def run(ctx: CollectorContext, *, opts: SshOptions, first_s: float, interval_s: float) -> None:
    """Back the device up until cancelled; never raises because of the device."""
    fetch = FETCH[ctx.device.protocol]
    # spread the fetches: an agent that claims thousands of devices at once must not log into all of them
    # in the same second, neither after the claim nor an interval later
    await asyncio.sleep(first_s * random.uniform(1, 2))
    failures = 0
    while True:
        try:
            fmt, text = await fetch(ctx, opts)
        except Exception as e:  # noqa: BLE001 - every device failure is classified and retried
            kind, detail, base = polling.classify(e)
            if failures == 0:
                log.warning("%s: config backup failed (%s: %s); retrying", ctx.device.name, kind, detail)
            failures += 1
            await asyncio.sleep(min(interval_s, backoff(failures, base=max(base, 1.0), cap=300.0)))
            continue
        if failures:
            log.info("%s: config backup works again after %d failures", ctx.device.name, failures)
        failures = 0
        if not await ctx.publish.config(fmt, text):
            log.warning("%s: config backup could not be published; next try in %.0f s", ctx.device.name, interval_s)
        await asyncio.sleep(interval_s * random.uniform(0.9, 1.1))


def jobs_for(device: wire.Device, settings: Settings) -> list[Job]:
    if device.protocol not in FETCH or settings.config_backup_interval_s <= 0:
        return []
    return [partial(run, opts=SshOptions.from_settings(settings), first_s=settings.config_backup_first_s,
                    interval_s=settings.config_backup_interval_s)]
