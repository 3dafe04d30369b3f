"""Debian's real Net-SNMP agent (``snmpd``) on a free UDP loopback port, and its ``snmpget`` client.

The agent gets a generated configuration: a v2c read-only community and SNMPv3 users made by
``createUser`` (SHA-256/AES authPriv by default), with its persistent state in a private directory so
that tests running at once never share USM state. Skips with the install line when snmpd is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .procs import stop_process

COMMUNITY = "s3cret-community"
V3_USER, V3_AUTH, V3_PRIV = "monitor", "auth-pass-12345", "priv-pass-12345"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_tools() -> None:
    for binary, package in (("snmpd", "snmpd"), ("snmpget", "snmp")):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            pytest.skip(f"{binary} is not installed: apt-get install {package}")


@dataclass
class Snmpd:
    port: int = 0
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swtel-snmpd-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"udp:127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> Snmpd:
        require_tools()
        conf = self.dir / "snmpd.conf"
        conf.write_text(
            f"rocommunity {COMMUNITY} 127.0.0.1\n"
            f"createUser {V3_USER} SHA-256 {V3_AUTH} AES {V3_PRIV}\n"
            f"rouser {V3_USER} priv\n"
            "sysName swtel-snmpd-test\nsysLocation loopback\nsysContact tests\n"
        )
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.dir / "state"), "MIBS": "", "MIBDIRS": str(self.dir)}
        for _ in range(5):  # a free port can be taken between the probe and snmpd's bind: try another
            self.port = free_udp_port()
            log = open(self.dir / "snmpd.log", "wb")  # noqa: SIM115 - closed with the process
            snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
            self.proc = subprocess.Popen([snmpd, "-f", "-Lo", "-C", "-c", str(conf), "-I", "-smux", self.address],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self.get("1.3.6.1.2.1.1.3.0", timeout=0.3) is not None:
                    return self
            self.stop()
        raise RuntimeError(f"snmpd did not start; its log: {(self.dir / 'snmpd.log').read_text()[-2000:]}")

    def get(self, *oids: str, timeout: float = 2.0) -> dict[str, str] | None:
        """``snmpget -v2c`` of the OIDs: {oid: value as Net-SNMP prints it (-Oqv)}, None when no answer."""
        p = subprocess.run(["snmpget", "-v2c", "-c", COMMUNITY, "-On", "-Oq", "-Ot", "-Oe", "-t", str(timeout),
                            "-r", "0", "-M", "/nonexistent", "-m", "", f"127.0.0.1:{self.port}", *oids],
                           capture_output=True, text=True, env={**os.environ, "MIBS": ""})
        if p.returncode != 0:
            return None
        out = {}
        for line in p.stdout.splitlines():
            oid, _, value = line.partition(" ")
            out[oid.lstrip(".")] = value.strip().strip('"')
        return out

    def number(self, oid: str) -> int:
        got = self.get(oid)
        assert got is not None and oid in got, f"snmpget {oid}: {got}"
        return int(got[oid])

    def walk_indexes(self, column: str) -> list[str]:
        p = subprocess.run(["snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-On", "-Oq", "-M", "/nonexistent", "-m", "",
                            f"127.0.0.1:{self.port}", column], capture_output=True, text=True, check=True,
                           env={**os.environ, "MIBS": ""})
        return [line.split(" ", 1)[0].lstrip(".")[len(column) + 1:] for line in p.stdout.splitlines()
                if line.lstrip(".").startswith(column + ".")]

    def stop(self) -> None:
        stop_process(self.proc, 5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
