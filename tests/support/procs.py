"""Stopping a peer process started by a test: SIGTERM, a bounded wait, then SIGKILL."""

from __future__ import annotations

import asyncio
import subprocess


def stop_process(proc: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def stop_async_process(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """``stop_process`` for a process started with asyncio's subprocess API."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
