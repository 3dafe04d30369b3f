"""`swtel demo` end to end: README's main command, as a user runs it, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}  # embedded NATS and PostgreSQL
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "swtel"), "demo", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Dashboard:" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    family: set[int] = set()
    try:
        assert ready.wait(240), "demo did not print the dashboard URL:\n" + "".join(lines[-40:])
        banner = next(line for line in lines if "Dashboard:" in line)
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
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            reader.join(10)
            assert proc.stdout is not None
            proc.stdout.close()
    assert code == 0, "".join(lines[-30:])
    assert "stopped; nothing left running." in "".join(lines)
    deadline = time.monotonic() + 10  # pg_ctl's postmaster may take a moment to exit after "stop"
    while time.monotonic() < deadline:
        left = [p for p in _processes_mentioning(str(data)) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        left += [psutil.Process(pid) for pid in family if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"left running: {[(p.pid, p.cmdline()) for p in left]}"
    assert "Traceback" not in "".join(lines), "".join(lines)
