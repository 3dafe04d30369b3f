"""``swtel sim run``: a real simulator process that registers its devices; clear one-line errors."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys

import nats
import pytest
from gnmi_pb import gnmi_pb2
from support.gnmisim import LOGIN, gnmi_client
from support.waits import eventually

from swtel.agent.sim.model import Faults
from swtel.agent.sim.runner import SimRunner, SimSpec
from swtel.cli.embedded import free_port_range
from swtel.cli.sim_cmd import parse_faults, register
from swtel.shared.inventory import Inventory


@pytest.mark.asyncio
async def test_sim_run_serves_registers_and_stops_on_sigterm(bootstrapped: str) -> None:
    base = free_port_range(3, start=random.randint(30000, 50000))
    env = {**os.environ, "SWTEL_NATS_URL": bootstrapped}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swtel.cli", "sim", "run", "--devices", "3", "--interfaces", "4", "--base-port",
        str(base), "--register", "--interval", "2s", "--name-prefix", "lab", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    nc = await nats.connect(bootstrapped)
    try:
        inv = await Inventory.open(nc.jetstream())

        async def registered() -> list:
            devices = await inv.list()
            return devices if len(devices) == 3 else []

        devices = await eventually(registered, timeout=30, what="three registered devices")
        assert [(d.name, d.port, d.protocol, d.credential) for d in devices] == [
            (f"lab-{i:04d}", base + i, "gnmi", "sim") for i in range(3)]
        assert devices[0].subscriptions[0].interval_s == 2.0
        async with gnmi_client(base + 1) as stub:
            r = await stub.Get(gnmi_pb2.GetRequest(path=[gnmi_pb2.Path(elem=[gnmi_pb2.PathElem(name="system")])],
                                                   encoding=gnmi_pb2.PROTO), metadata=LOGIN, timeout=5)
            assert "lab-0001" in str(r)
    finally:
        await nc.close()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert "serving 3 simulated gnmi switch(es)" in err.decode()
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 1))  # the port is free again


@pytest.mark.asyncio
async def test_register_updates_a_restarted_simulator(bootstrapped: str) -> None:
    nc = await nats.connect(bootstrapped)
    try:
        inv = await Inventory.open(nc.jetstream())
        first = SimRunner(SimSpec(devices=2, interfaces=1, base_port=0))
        await first.start()
        try:
            assert await register(inv, first.inventory()) == (2, 0)
        finally:
            await first.close()
        second = SimRunner(SimSpec(devices=3, interfaces=1, base_port=0))
        await second.start()
        try:
            assert await register(inv, second.inventory()) == (1, 2)  # new ports for the old names
            assert {d.name: d.port for d in await inv.list()} == second.ports
        finally:
            await second.close()
    finally:
        await nc.close()


def test_bad_flags_are_one_line_errors(swtel) -> None:
    r = swtel("sim", "run", "--devices", "2", "--protocol", "carrier-pigeon")
    assert r.code == 2 and "protocol 'carrier-pigeon' is unknown" in r.err and "Traceback" not in r.err
    r = swtel("sim", "run", "--devices", "2", "--fault", "meteor")
    assert r.code == 2 and "fault 'meteor' is unknown" in r.err
    r = swtel("sim", "run", "--devices", "2", "--fault", "delay=soon")
    assert r.code == 2 and "delay" in r.err


def test_a_port_in_use_is_a_one_line_error(swtel) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = swtel("sim", "run", "--devices", "1", "--base-port", str(port))
    assert r.code == 2 and f"cannot listen for gnmi on 127.0.0.1 ports {port}" in r.err, r.err


def test_fault_flags_and_which_devices_get_them() -> None:
    f = parse_faults(["wrong-password", "delay=500ms", "drop=30s", "reset=1m", "garbage", "hang"])
    assert f == Faults(wrong_password=True, delay_s=0.5, hang=True, drop_stream_after_s=30.0, garbage=True,
                       counter_reset_at_s=60.0)
    runner = SimRunner(SimSpec(devices=5, interfaces=1, faults=Faults(hang=True), faulty=2))
    assert [d.faults.hang for d in runner.devices] == [False, False, False, True, True]
    assert len({id(d.faults) for d in runner.devices}) == 5  # one Faults per device: changing one spares the rest

