"""Run in its own process (pygnmi's gNMI 0.8 modules cannot share a process with gnmi_pb): read
Capabilities, a Get and a few SAMPLE updates from a gNMI target and print them as one JSON document.

    python pygnmi_probe.py PORT USERNAME PASSWORD
"""

from __future__ import annotations

import json
import sys

from pygnmi.client import gNMIclient


def main() -> None:
    port, username, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    out: dict = {}
    with gNMIclient(target=("127.0.0.1", port), username=username, password=password, insecure=True,
                    gnmi_timeout=10) as gc:
        out["capabilities"] = gc.capabilities()
        out["get"] = gc.get(path=["/interfaces/interface[name=eth0]/state/counters"], encoding="json_ietf")
        sub = {"subscription": [{"path": "/interfaces/interface[name=eth0]/state/counters/in-octets",
                                 "mode": "sample", "sample_interval": 200_000_000}],
               "mode": "stream", "encoding": "proto"}
        stream = gc.subscribe2(subscribe=sub)
        updates = []
        for msg in stream:
            updates.append(msg)
            if len([u for u in updates if "update" in u]) >= 3:
                break
        stream.close()
        out["stream"] = updates
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
