"""The agent process gives memory it freed back to the system (``collect.trim_memory_every``).

A child process fills 200 MB of glibc's heap in 4 kB blocks and frees all but the topmost, the way a
burst of device updates leaves the heap: ``free`` alone cannot shrink a heap whose top is in use, so RSS
stays. With the periodic trim running, RSS falls by most of it; without it (the control), it does not.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = r"""
import asyncio, ctypes, sys, time
from swtel.agent.collect import trim_memory_every

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS:"))

blocks = [libc.malloc(4096) for _ in range(50_000)]
for b in blocks:
    ctypes.memset(b, 1, 4096)
for b in blocks[:-1]:  # the topmost block stays in use
    libc.free(b)
before = rss_mb()

async def main():
    if sys.argv[1] == "trim":
        trim_memory_every(asyncio.get_running_loop(), 0.05)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and rss_mb() > before - 150:
        await asyncio.sleep(0.05)  # polling RSS, which no event announces
    print(before, rss_mb())

asyncio.run(main())
"""


def _run(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = (int(x) for x in out.stdout.split())
    return before, after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_goes_back_to_the_system_only_with_the_trim() -> None:
    before, after = _run("none")
    assert before >= 200 and after > before - 50, f"control: RSS {before} → {after} MB without the trim"
    before, after = _run("trim")
    assert after <= before - 150, f"RSS {before} → {after} MB: the periodic trim returned too little"
