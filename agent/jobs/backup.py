"""Config backup: the running configuration of an SSH or NETCONF device, fetched by the agent holding its
lease shortly after the claim and then every ``config_backup_interval_s``, published on
``swtel.config.<device>`` (JetStream). The hub stores a backup only when its content changed.

SSH: the platform's show command (below), run the way the collector runs commands (exec, or the
interactive shell for IOS-XR / ``ssh_mode=shell`` / a device that refuses exec; ``enable`` first where the
prompt is unprivileged). An answer that is a command error (``% Invalid input``, ``Unknown command``,
``error: …``) or empty is a failed fetch, never a configuration. NETCONF: ``<get-config>`` of the running
datastore, stored as the device sent the contents of ``<data>`` (its bytes, prefixes and layout), not
re-serialised. gNMI devices are skipped: the simulator's (and many devices') Get has no
configuration-only view, see docs/CONFIG-BACKUP.md. The job uses its own short session, so a fetch never
waits behind the collector's polls; failures are logged once per streak and retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import xml.etree.ElementTree as ET
from functools import partial

from swtel.agent.collectors import netconf, polling, sshconn
from swtel.agent.collectors.base import CollectorContext, backoff
from swtel.agent.collectors.ssh import open_cli
from swtel.agent.collectors.sshconn import SshOptions
from swtel.shared import wire
from swtel.shared.settings import Settings

from . import Job

log = logging.getLogger("swtel.agent.backup")

DEFAULT_COMMAND = "show running-config"  # ios, iosxe, eos, nxos, iosxr, generic
COMMANDS = {"junos": "show configuration", "srl": "info"}
GET_CONFIG = "<get-config><source><running/></source></get-config>"


def command_for(platform: str) -> str:
    return COMMANDS.get(platform, DEFAULT_COMMAND)


class EmptyConfig(polling.DeviceError):
    """The device answered the configuration command with nothing."""


async def fetch_ssh(ctx: CollectorContext, opts: SshOptions) -> tuple[str, str]:
    conn, cli = await open_cli(ctx.device, ctx.credential, opts)
    try:
        cmd = command_for(ctx.device.platform)
        text = await cli.command(cmd)  # a refused command raises CommandFailed: never stored as a config
        if not text.strip():
            raise EmptyConfig(f"{cmd!r}: empty answer")
        return "text", text
    finally:
        await sshconn.close(conn)


class _KeepReplyBytes(netconf.NetconfSession):
    """A NETCONF session that keeps each reply's bytes as they came (the base class only parses them)."""

    last_reply = b""

    def _xml(self, msg: bytes) -> ET.Element:  # type: ignore[override]
        self.last_reply = msg
        return netconf.NetconfSession._xml(msg)


async def fetch_netconf(ctx: CollectorContext, opts: SshOptions) -> tuple[str, str]:
    conn = await sshconn.connect(ctx.device, ctx.credential, opts)
    nc = _KeepReplyBytes(conn, opts, base11=ctx.device.tags.get("netconf_framing") != "1.0")
    try:
        await nc.open()
        await nc.rpc(GET_CONFIG)  # checks message-id and rpc-error
        raw = nc.last_reply
    finally:
        await nc.close()
        await sshconn.close(conn)
    return "xml", data_contents(raw)


_DATA_OPEN = re.compile(rb"<(?:([\w.-]+):)?data(?=[\s/>])[^>]*?(/?)>")


def data_contents(reply: bytes) -> str:
    """What the device sent inside ``<data>`` of an ``<rpc-reply>``, byte for byte (decoded as UTF-8): the
    device's own prefixes, namespace declarations, order and whitespace, so two backups differ only where
    the device's answer did."""
    m = _DATA_OPEN.search(reply)
    if m is None or m.group(2):  # no <data> or an empty <data/>
        return ""
    prefix = m.group(1) + b":" if m.group(1) else b""
    end = reply.rfind(b"</" + prefix + b"data>")
    if end < m.end():
        raise polling.DeviceError("get-config reply: <data> is not closed")
    return reply[m.end() : end].decode("utf-8", errors="replace").strip("\r\n") + "\n"


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
