"""Decode cost in isolation: parse one 480-counter SubscribeResponse (48 interfaces × 10 counters, the
bench's load) as the collector's stream does and turn it into columns (paths, values, one timestamp). Median of 7 runs of 200 messages.

    python -m bench.agent.decode
"""

from __future__ import annotations

import gc
import statistics
import time

from gnmi_pb import gnmi_pb2

from swtel.agent.collectors import gnmi, gnmi_paths
from swtel.shared import wire

COUNTERS = ("in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-errors", "out-errors",
            "in-discards", "out-discards", "in-multicast-pkts", "out-multicast-pkts")


def message() -> bytes:
    n = gnmi_pb2.Notification(timestamp=time.time_ns(), prefix=gnmi_paths.to_proto("/interfaces"))
    for i in range(48):
        for j, c in enumerate(COUNTERS):
            u = n.update.add(path=gnmi_paths.to_proto(f"/interface[name=Ethernet{i + 1}]/state/counters/{c}"))
            u.val.uint_val = 10**9 + 1000 * i + j
    return gnmi_pb2.SubscribeResponse(update=n).SerializeToString()


def main() -> None:
    data = message()
    # the view Subscribe streams are read as (older collectors: the bytes view, or gnmi_pb2 itself)
    view = getattr(gnmi, "SubscribeResponseRaw", None) or getattr(gnmi, "SubscribeResponseBytes", None)
    parse = (view or gnmi_pb2.SubscribeResponse).FromString
    out = wire.Columns()
    gnmi.decode_notification(parse(data).update, out)  # warm the path cache, as every interval after the first
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(200):
            out = wire.Columns()
            gnmi.decode_notification(parse(data).update, out)
        runs.append((time.perf_counter() - t0) / 200)
        gc.collect()
    print(f"{len(out)} samples per message ({len(data)} bytes): parse + decode {statistics.median(runs) * 1e6:.0f} µs "
          f"= {statistics.median(runs) / len(out) * 1e9:.0f} ns per sample (median of 7 × 200)")


if __name__ == "__main__":
    main()
