"""Which SNMP library: CPU per thousand varbinds for gufo-snmp, ezsnmp and pysnmp 7 walking the same agent.

    apt-get install snmpd && pip install pysnmp ezsnmp     # the two not chosen are not dependencies
    .venv/bin/python bench/agent/snmp_libs.py --port 16161 --community public [--walks 15]

Start any v2c agent first (e.g. Debian's snmpd on a loopback port, as tests/support/snmpd.py does). Each
library runs in its own fresh process and walks ``--root`` (default HOST-RESOURCES-MIB, thousands of
varbinds on a Linux snmpd) ``--walks`` times with GETBULK, max-repetitions 25; the figure is that process's
CPU time (import included, as an agent pays it once) per thousand varbinds received. The result decided
docs/ARCHITECTURE.md's choice.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time


async def gufo(a: argparse.Namespace) -> int:
    from gufo.snmp.aio import SnmpSession

    n = 0
    async with SnmpSession(addr=a.host, port=a.port, community=a.community, max_repetitions=25, timeout=5) as s:
        for _ in range(a.walks):
            async for _oid, _v in s.getbulk(a.root):
                n += 1
    return n


async def pysnmp(a: argparse.Namespace) -> int:
    from pysnmp.hlapi.v3arch.asyncio import (CommunityData, ContextData, ObjectIdentity, ObjectType, SnmpEngine,
                                             UdpTransportTarget, bulk_walk_cmd)

    engine = SnmpEngine()
    target = await UdpTransportTarget.create((a.host, a.port), timeout=5, retries=0)
    n = 0
    for _ in range(a.walks):
        async for err, status, _i, vbs in bulk_walk_cmd(engine, CommunityData(a.community), target, ContextData(), 0,
                                                        25, ObjectType(ObjectIdentity(a.root)),
                                                        lexicographicMode=False, lookupMib=False):
            if err or status:
                raise SystemExit(f"pysnmp: {err or status}")
            n += len(vbs)
    engine.close_dispatcher()
    return n


def ezsnmp(a: argparse.Namespace) -> int:
    from ezsnmp import Session

    s = Session(hostname=a.host, port_number=a.port, version=2, community=a.community,
                set_max_repeaters_to_num=25, print_oids_numerically=True)
    return sum(len(s.bulk_walk([a.root])) for _ in range(a.walks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--community", default="public")
    ap.add_argument("--root", default="1.3.6.1.2.1.25")
    ap.add_argument("--walks", type=int, default=15)
    ap.add_argument("--lib", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.lib:
        t = time.process_time()
        n = ezsnmp(a) if a.lib == "ezsnmp" else asyncio.run({"gufo-snmp": gufo, "pysnmp": pysnmp}[a.lib](a))
        print(f"{a.lib:10} {n:>8} varbinds {1000 * (time.process_time() - t) / n * 1000:>8.1f} ms CPU per 1000")
        return
    for lib in ("gufo-snmp", "ezsnmp", "pysnmp"):
        p = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--lib", lib], capture_output=True, text=True)
        print(p.stdout.strip() or f"{lib:10} not measured: {(p.stderr.strip().splitlines() or ['?'])[-1]}")


if __name__ == "__main__":
    main()
