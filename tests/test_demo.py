"""`swtel demo` end to end: README's main command, as a user runs it, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import psutil
import pytest

from support.demo import DemoProcess
from support.ports import free_port

DEVICES = 50


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            pass
    return found


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_demo_shows_fifty_devices_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    port = free_port()
    demo = DemoProcess("--data-dir", str(data), "--port", str(port))  # no SWTEL_*: embedded NATS and PostgreSQL
    proc = demo.proc
    family: set[int] = set()
    try:
        banner = demo.wait_ready()
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", banner).group(1)  # type: ignore[union-attr]
        password = re.search(r"password (\S+)", banner).group(1)  # type: ignore[union-attr]
        family = {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))}
        family |= {p.pid for p in _processes_mentioning(str(data))}

        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/api/devices").status_code == 401  # nothing without logging in
            csrf = client.get("/api/csrf").json()["csrf_token"]
            r = client.post("/api/login", json={"name": "demo", "password": password}, headers={"X-CSRFToken": csrf})
            assert r.status_code == 200, r.text
            devices = [d["name"] for d in client.get("/api/devices").json()]
            assert len(devices) == DEVICES
            deadline = time.monotonic() + 120
            missing = set(devices)
            while missing and time.monotonic() < deadline:
                missing = {d for d in missing if not client.get("/api/series", params={"device": d}).json()}
                if missing:
                    time.sleep(1)
            assert not missing, f"no stored data for {len(missing)} devices: {sorted(missing)[:5]}"
            assert client.get("/").status_code == 200  # the dashboard page itself
    finally:
        demo.stop()
    assert "stopped; nothing left running." in demo.out
    deadline = time.monotonic() + 10  # pg_ctl's postmaster may take a moment to exit after "stop"
    while time.monotonic() < deadline:
        left = [p for p in _processes_mentioning(str(data)) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        left += [psutil.Process(pid) for pid in family if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"left running: {[(p.pid, p.cmdline()) for p in left]}"
