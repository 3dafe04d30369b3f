"""Start N simulated switches on loopback: device ``i`` listens on ``base_port + i``.

Each protocol has one serve function in :data:`SERVERS` with the signature
``async def serve_x(devices: list[SimDevice], host: str, ports: list[int]) -> object with async close()``.
``mixed`` deals protocols round-robin (gnmi, ssh, netconf). Everything runs in one process and one event
loop; a device costs no work while nobody is subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from swtel.agent.sim.model import Faults, SimDevice
from swtel.shared import inventory, wire
from swtel.shared.errors import InvalidInput, UserError

Serve = Callable[[list[SimDevice], str, list[int]], Awaitable[Any]]


def _lazy(module: str, name: str) -> Serve:
    """Import a protocol's server only when it is used (asyncssh stays unloaded for a gNMI-only run)."""

    async def serve(devices: list[SimDevice], host: str, ports: list[int], **kw: Any) -> Any:
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            raise UserError(f"this build has no simulator for {name.removeprefix('serve_')}") from None
        return await fn(devices, host, ports, **kw)

    return serve


# One entry per protocol, e.g. "ssh": _lazy("swtel.agent.sim.<module>", "serve_ssh").
SERVERS: dict[str, Serve] = {
    "gnmi": _lazy("swtel.agent.sim.gnmi_target", "serve_gnmi"),
    "ssh": _lazy("swtel.agent.sim.ssh_server", "serve_ssh"),
    "netconf": _lazy("swtel.agent.sim.netconf_server", "serve_netconf"),
    "snmp": _lazy("swtel.agent.sim.snmp_agent", "serve_snmp"),
}
PROTOCOLS = ("gnmi", "ssh", "netconf")  # what `mixed` deals round-robin
SINGLE = (*PROTOCOLS, "snmp")  # what --protocol accepts besides mixed
HOST = "127.0.0.1"  # the simulator never listens beyond loopback


@dataclass
class SimSpec:
    devices: int
    protocol: str = "gnmi"  # gnmi, ssh, netconf, snmp or mixed
    interfaces: int = 48
    base_port: int = 20000  # 0: any free port per device (tests)
    platform: str = "generic"
    prefix: str = "sim"
    username: str = "admin"
    password: str = field(default="admin", repr=False)
    faults: Faults = field(default_factory=Faults)
    faulty: int | None = None  # the last N devices get the faults; None: all of them
    tls: Any = None  # gnmi_target.TlsFiles for gNMI over TLS
    config_change_s: float | None = None  # edit every device's running config this often (config backup demos)

    def check(self) -> None:
        if self.devices < 1:
            raise InvalidInput("--devices must be at least 1")
        if self.protocol not in (*SINGLE, "mixed"):
            raise InvalidInput(f"protocol {self.protocol!r} is unknown; use gnmi, ssh, netconf, snmp or mixed")
        if not 1 <= self.interfaces <= 1024:
            raise InvalidInput("--interfaces must be from 1 to 1024")
        if self.base_port and not 1024 <= self.base_port <= 65535 - self.devices:
            raise InvalidInput(f"ports {self.base_port}..{self.base_port + self.devices - 1} are not all in 1024..65535")


def ensure_fd_limit(need: int) -> None:
    """Raise the soft open-files limit towards the hard one: each device is a listening socket plus one
    socket per client connection, and many systems start processes at 1,024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < need:
            raise UserError(f"{need} open files are needed but the limit is {new} (ulimit -n); raise it or "
                            "run fewer devices per process")


def protocol_of(spec: SimSpec, i: int) -> str:
    return PROTOCOLS[i % 3] if spec.protocol == "mixed" else spec.protocol


def make_devices(spec: SimSpec) -> list[SimDevice]:
    spec.check()
    width = max(4, len(str(spec.devices)))
    first_faulty = 0 if spec.faulty is None else spec.devices - spec.faulty
    return [
        SimDevice(
            name=f"{spec.prefix}-{i:0{width}d}", platform=spec.platform, interfaces=spec.interfaces,
            username=spec.username, password=spec.password,
            faults=dataclasses.replace(spec.faults) if i >= first_faulty else Faults(),
        )
        for i in range(spec.devices)
    ]


class SimRunner:
    """Serves the devices of a :class:`SimSpec`; ``run()`` until cancelled, or ``start()``/``close()``."""

    def __init__(self, spec: SimSpec) -> None:
        self.spec = spec
        self.devices = make_devices(spec)
        self.ports: dict[str, int] = {}  # device name → port
        self.protocols: dict[str, str] = {}
        self._fleets: list[Any] = []
        self._changer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ensure_fd_limit(3 * len(self.devices) + 256)  # listener + a client connection or two per device
        groups: dict[str, list[int]] = {}
        for i in range(len(self.devices)):
            groups.setdefault(protocol_of(self.spec, i), []).append(i)
        missing = sorted(set(groups) - set(SERVERS))
        if missing:
            raise UserError(f"this build has no simulator for {', '.join(missing)}")
        try:
            for proto, idx in groups.items():
                devices = [self.devices[i] for i in idx]
                ports = [self.spec.base_port + i if self.spec.base_port else 0 for i in idx]
                kw = {"tls": self.spec.tls} if proto == "gnmi" and self.spec.tls is not None else {}
                try:
                    fleet = await SERVERS[proto](devices, HOST, ports, **kw)
                except RuntimeError as e:  # grpc: "Failed to bind to address …"
                    raise UserError(f"cannot listen for {proto} on {HOST} ports {ports[0]}..{ports[-1]}: {e}") from None
                except OSError as e:
                    raise UserError(f"cannot listen for {proto} on {HOST}: {e.strerror or e}") from None
                self._fleets.append(fleet)
                for d, port in zip(devices, getattr(fleet, "ports", ports), strict=True):
                    self.ports[d.name] = port
                    self.protocols[d.name] = proto
        except BaseException:
            await self.close()
            raise
        if self.spec.config_change_s:
            self._changer = asyncio.create_task(self._change_configs(self.spec.config_change_s))

    async def _change_configs(self, every_s: float) -> None:
        """A config change on every device now and then: the first interface's description names the time."""
        while True:
            await asyncio.sleep(every_s)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            for d in self.devices:
                d.set_description(d.ifnames[0], f"changed by the simulator at {stamp} UTC")

    async def close(self) -> None:
        if self._changer is not None:
            self._changer.cancel()
            await asyncio.gather(self._changer, return_exceptions=True)
            self._changer = None
        fleets, self._fleets = self._fleets, []
        for fleet in fleets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(fleet.close(), 10)

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    def inventory(self, *, credential: str | None = "sim", interval: str | None = None) -> list[wire.Device]:
        """The devices as inventory entries (``swtel sim run --register``)."""
        tls = "skip-verify" if self.spec.tls is not None else "off"
        return [
            inventory.make_device(
                d.name, HOST, self.protocols[d.name], port=self.ports[d.name], platform=d.platform,
                credential=credential, interval=interval, tags={"sim": "1"},
                tls=tls if self.protocols[d.name] == "gnmi" else "off",
            )
            for d in self.devices
        ]
