"""fakenos (PyPI) as a third-party SSH peer: shells that replay outputs captured from real devices.

``FakeNos.start(platforms)`` runs one fakenos host per platform on a free loopback port (shell only: like
many real devices, fakenos refuses exec requests); ``captured(platform, command)`` reads the output the
package ships for a command, at test time, from the installed package (nothing is copied into this
repository). Platform names are fakenos's (``cisco_ios``, ``arista_eos``, ``cisco_nxos``, ``cisco_xr``,
``juniper_junos``).
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from .ports import free_port

USERNAME, PASSWORD = "netops", "fakenos-pw"

# our inventory platform -> fakenos platform
PLATFORMS = {"ios": "cisco_ios", "eos": "arista_eos", "nxos": "cisco_nxos", "iosxr": "cisco_xr",
             "junos": "juniper_junos"}


def require() -> Any:
    return pytest.importorskip("fakenos", reason="fakenos is not installed: pip install 'fakenos>=1.2,<2'")


def package_dir() -> Path:
    return Path(require().__file__).parent


@functools.cache
def _nos(platform: str) -> Any:
    """fakenos's own definition of ``platform``, loaded as its server loads it (the YAML captures, then the
    Python module's commands over them: IOS and EOS render some outputs from templates)."""
    from fakenos.core.nos import Nos
    from fakenos.plugins.nos import nos_plugins

    return Nos(filename=nos_plugins[platform])


def _commands(platform: str) -> dict[str, Any]:
    return _nos(platform).commands


def captured(platform: str, command: str, host: str | None = None) -> str:
    """The output fakenos serves for ``command`` on ``platform`` (KeyError when it has none), read from the
    installed package at test time."""
    nos = _nos(platform)
    out = nos.commands[command]["output"]
    if callable(out):
        base = host or FakeNos.host(platform)
        out = out(nos.device, base_prompt=base, current_prompt=f"{base}#", command=command)
    return out.replace("{base_prompt}", host or FakeNos.host(platform)) if isinstance(out, str) else ""


def serves(platform: str, command: str) -> bool:
    return command in _commands(platform)


class FakeNos:
    def __init__(self, platforms: list[str]) -> None:
        fakenos = require()
        self.ports = {p: free_port() for p in platforms}
        # host names unlike any prompt inside the captures ("ceos1#…"), so a replayed line never ends a read early
        inventory = {
            "default": {"username": USERNAME, "password": PASSWORD,
                        "server": {"plugin": "ParamikoSshServer",
                                   "configuration": {"address": "127.0.0.1", "timeout": 1}}},
            "hosts": {self.host(p): {"port": port, "platform": p} for p, port in self.ports.items()},
        }
        self.net = fakenos.FakeNOS(inventory=inventory)

    @staticmethod
    def host(platform: str) -> str:
        return "fk-" + platform.replace("_", "-")

    def start(self) -> FakeNos:
        for name in ("fakenos", "paramiko"):  # every unknown command, every port probe: logged as errors
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self.net.start()
        # fakenos binds in start() and listens in a thread; wait for LISTEN without connecting (a bare TCP
        # probe makes its server thread raise, which pytest reports as an unhandled thread exception)
        deadline = time.monotonic() + 10
        while not all(_listening(p) for p in self.ports.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"fakenos is not listening on {sorted(self.ports.values())} after 10 s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.net.stop()


def _listening(port: int) -> bool:
    """Whether a socket is in LISTEN state on 127.0.0.1:port (Linux /proc/net/tcp, state 0A)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A" for line in f.readlines()[1:])
