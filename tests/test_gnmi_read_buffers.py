"""gRPC's read buffers of the collector's channels (issue 20, the 10,000-device ramp peak).

grpc-core sizes a connection's next read from what its last reads returned: a read of more than 80 % of the
target (8 kB to start) doubles it, and from 12 kB on the connection reads into 64 kB slices that it keeps
until reads have walked through them (``PosixEndpointImpl::MaybeMakeReadSlices``, grpc 1.85). One
notification of 8 interfaces × 10 counters is 7 kB, so without a cap every session took a 64 kB slice at
its second notification and held it ~9 intervals; sessions that start together filled them together (the
10,000-device run: +400-500 MB of RSS ~90 s into start-up, then released at once). The collector's channel
options cap the target (``grpc.experimental.tcp_max_read_buffer_size``): reads stay in 8 kB slices.

Measured as glibc's bytes in use (``mallinfo2``), not RSS: the slices are allocated at once and their
pages touched only as reads fill them.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util

import grpc
import pytest
from support.gnmisim import LOGIN, gnmi_fleet, subscribe_request

from swtel.agent.collectors import gnmi
from swtel.agent.collectors.base import CollectorContext
from swtel.agent.sim.model import SimDevice
from swtel.shared import inventory

DEVICES = 64
# 2026-12-06: 4-7 kB more per connection with the cap, 58-62 kB without (a 64 kB slice each)
BOUND_KB = 16


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                      "usmblks", "fsmblks", "uordblks", "fordblks",
                                                      "keepcost")]


def _malloc_in_use() -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc >= 2.33 needed (mallinfo2)")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().uordblks


@pytest.mark.asyncio
async def test_collector_channels_keep_no_64k_read_slices() -> None:
    _malloc_in_use()  # skips here, before serving anything, where it cannot measure
    sims = [SimDevice(f"leaf-{i}", interfaces=8) for i in range(DEVICES)]
    async with gnmi_fleet(*sims) as fleet:
        counts = [0] * DEVICES
        reached: dict[int, asyncio.Event] = {1: asyncio.Event(), 4: asyncio.Event()}

        async def read(i: int, channel: grpc.aio.Channel) -> None:
            call = gnmi.subscribe_call(channel)(iter([subscribe_request(
                "/interfaces/interface/state/counters", sample_s=0.2)]), metadata=LOGIN)
            while (resp := await call.read()) is not grpc.aio.EOF:
                if resp.WhichOneof("response") != "update":
                    continue
                counts[i] += 1
                for n, event in reached.items():
                    if min(counts) >= n:
                        event.set()

        channels = []
        for i, port in enumerate(fleet.ports):
            device = inventory.make_device(sims[i].name, "127.0.0.1", "gnmi", port=port)
            ctx = CollectorContext(device, 1, None, None)  # type: ignore[arg-type]  # no publishing here
            channels.append(await gnmi.open_channel(ctx))  # the collector's channel, with its options
        tasks = [asyncio.create_task(read(i, ch)) for i, ch in enumerate(channels)]
        try:
            async with asyncio.timeout(30):
                await reached[1].wait()  # every connection has read one 7 kB notification
                before = _malloc_in_use()
                await reached[4].wait()  # and three more: the slices they read into
                after = _malloc_in_use()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for ch in channels:
                await ch.close(grace=None)
    per_device_kb = (after - before) / DEVICES / 1024
    print(f"malloc'd bytes in use grew {per_device_kb:.1f} kB per connection over three notifications")
    assert per_device_kb < BOUND_KB, (
        f"{per_device_kb:.0f} kB more in use per connection after three notifications: gRPC reads into 64 kB "
        f"slices (is grpc.experimental.tcp_max_read_buffer_size still in gnmi.CHANNEL_OPTIONS?)")
