"""Serve finsy's test gNMI server (``finsy.test.gnmi_server``: hard-wired answers copied from Stratum) on
127.0.0.1:PORT, print one JSON line saying what it serves, then serve until stdin closes.

    python finsy_gnmi.py PORT

Its own process: finsy's gnmi protos and gnmi-pb's would clash in one protobuf descriptor pool. What it
serves is read from finsy's own canned responses (decoded with finsy's own protos), so the tests check
our collector against the peer's data, not against numbers copied into the test.
"""

from __future__ import annotations

import asyncio
import json
import sys

from finsy import pbutil
from finsy.proto import gnmi
from finsy.test import gnmi_server as fs


def _path(p: gnmi.Path) -> str:
    return "/" + "/".join(e.name + "".join(f"[{k}={v}]" for k, v in sorted(e.key.items())) for e in p.elem)


def _samples(texts: list[str]) -> list[list[object]]:
    out: list[list[object]] = []
    for text in texts:
        n = pbutil.from_text(text, gnmi.SubscribeResponse).update
        for u in n.update:
            kind = u.val.WhichOneof("value")
            out.append([_path(u.path), getattr(u.val, kind), n.timestamp])
    return out


def served() -> dict[str, object]:
    caps = pbutil.from_text(fs._GNMI_CAPABILITIES, gnmi.CapabilityResponse)
    return {
        "models": [m.name for m in caps.supported_models],
        "encodings": [gnmi.Encoding.Name(e) for e in caps.supported_encodings],
        "gnmi_version": caps.gNMI_version,
        "sample": _samples(fs._GNMI_SUBSCRIBE_RESPONSES_SAMPLE),  # answer to a SAMPLE subscription
        "initial": _samples(fs._GNMI_SUBSCRIBE_RESPONSES_INITIAL),  # other modes: initial state, sync, then
        "updates": _samples(fs._GNMI_SUBSCRIBE_RESPONSES_UPDATES),  # these changes, then silence
    }


async def main(port: int) -> None:
    async with fs.GNMIServer(f"127.0.0.1:{port}").run():
        print(json.dumps(served()), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
