"""``swtel device set`` and ``swtel device sync`` (inventory as code) against a real nats-server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import nats
import pytest

from support.natsserver import NatsServer
from swtel.cli.device_files import FIELDS
from swtel.shared import invsync
from swtel.shared.inventory import Inventory, edit_device


@pytest.fixture
def cli(swtel, nats_server: NatsServer):
    def call(*args: str):
        return swtel("--nats", nats_server.url, *args)

    assert call("nats", "init").code == 0
    return call


def one_line_error(res, code: int = 2) -> str:
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1, res.err
    return res.err.strip()


def show(cli, name: str) -> dict:
    res = cli("device", "show", name, "--json")
    assert res.code == 0, res.err
    return json.loads(res.out)


def names(cli, *filters: str) -> list[str]:
    res = cli("device", "list", "--json", *filters)
    assert res.code == 0, res.err
    return [r["name"] for r in json.loads(res.out)]


# ---- device set ----------------------------------------------------------------------------------------


def test_set_changes_only_the_given_fields(cli) -> None:
    assert cli("device", "add", "leaf-01", "--address", "10.0.0.1", "--protocol", "gnmi", "--tag", "site=dc1",
               "--tag", "rack=r1", "--credential", "lab").code == 0
    res = cli("device", "set", "leaf-01", "--interval", "30s", "--tag", "role=spine", "--tag", "-rack", "--port", "6030")
    assert res.code == 0, res.err
    assert "interval" not in res.out or "30" in res.out
    assert "port 9339 → 6030" in res.out and "rack=r1" in res.out
    dev = show(cli, "leaf-01")
    assert dev["port"] == 6030 and dev["tags"] == {"site": "dc1", "role": "spine"} and dev["credential"] == "lab"
    assert {s["interval_s"] for s in dev["subscriptions"]} == {30.0} and len(dev["subscriptions"]) == 2
    assert dev["address"] == "10.0.0.1"

    res = cli("device", "set", "leaf-01", "--path", "/system/memory/state", "--address", "leaf-01.example.net")
    assert res.code == 0, res.err
    dev = show(cli, "leaf-01")
    assert dev["subscriptions"] == [{"name": "custom", "paths": ["/system/memory/state"], "interval_s": 30.0}]
    assert dev["address"] == "leaf-01.example.net"
    again = cli("device", "set", "leaf-01", "--port", "6030")
    assert again.code == 0 and "no changes" in again.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["leaf-01"], "nothing to change"),
        (["leaf-01", "--interval", "10x"], "interval '10x'"),
        (["leaf-01", "--port", "0"], "port 0"),
        (["leaf-01", "--tag", "novalue"], "not key=value"),
        (["leaf-01", "--tag", "-"], "names no key"),
        (["leaf-01", "--address", "bad host!"], "neither an IP address"),
        (["leaf-01", "--path", "interfaces"], "must start with /"),
        (["nosuch", "--port", "22"], "device 'nosuch' does not exist"),
    ],
)
def test_set_mistakes_are_one_line(cli, args: list[str], message: str) -> None:
    cli("device", "add", "leaf-01", "--address", "10.0.0.1", "--protocol", "gnmi")
    assert message in one_line_error(cli("device", "set", *args))
    assert show(cli, "leaf-01")["port"] == 9339  # nothing changed


def test_concurrent_sets_never_overwrite_each_other(swtel, nats_server: NatsServer) -> None:
    """Twenty writers each set their own tag on one device at once: compare-and-set keeps all twenty."""
    assert swtel("--nats", nats_server.url, "nats", "init").code == 0
    assert swtel("--nats", nats_server.url, "device", "add", "r1", "--address", "10.0.0.1", "--protocol", "ssh").code == 0

    async def go():
        nc = await nats.connect(nats_server.url)
        try:
            inv = await Inventory.open(nc.jetstream())
            await asyncio.gather(*(inv.edit("r1", lambda d, i=i: edit_device(d, set_tags={f"t{i}": "x"}), attempts=50)
                                   for i in range(20)))
            return (await inv.get("r1"))[0]
        finally:
            await nc.close()

    dev = asyncio.run(go())
    assert dev.tags == {f"t{i}": "x" for i in range(20)}


# ---- device sync ---------------------------------------------------------------------------------------


def write_inventory(root: Path, interval_of_leaf3: str = "10s", with_spine2: bool = True) -> None:
    (root / "dc1").mkdir(parents=True, exist_ok=True)
    (root / "dc1" / "leaves.yaml").write_text(
        "devices:\n"
        "  - {name: leaf-1, address: 10.0.1.1, protocol: gnmi, tags: {site: dc1}}\n"
        "  - {name: leaf-2, address: 10.0.1.2, protocol: gnmi, tags: {site: dc1}}\n"
        f"  - {{name: leaf-3, address: 10.0.1.3, protocol: ssh, platform: eos, interval: {interval_of_leaf3}}}\n"
    )
    rows = "name,address,protocol,tags\nspine-1,10.0.2.1,netconf,site=dc1;role=spine\n"
    if with_spine2:
        rows += "spine-2,10.0.2.2,netconf,site=dc1;role=spine\n"
    (root / "spines.csv").write_text(rows)
    (root / "README.txt").write_text("not an inventory file: ignored\n")


def test_sync_a_directory_twice_then_change_one_and_prune_one(cli, tmp_path: Path) -> None:
    inv = tmp_path / "inventory"
    write_inventory(inv)
    cli("device", "add", "old-1", "--address", "10.9.9.9", "--protocol", "ssh")

    first = cli("device", "sync", str(inv))
    assert first.code == 0, first.err
    assert "plan: 5 to add, 0 to change, 0 to remove, 0 unchanged" in first.out
    assert "applied: 5 added, 0 changed, 0 removed" in first.out
    assert "1 device(s) in the inventory are in no file" in first.err  # old-1 kept without --prune
    assert names(cli) == ["leaf-1", "leaf-2", "leaf-3", "old-1", "spine-1", "spine-2"]
    revisions = {r["name"]: r for r in json.loads(cli("device", "list", "--json").out)}

    second = cli("device", "sync", str(inv))
    assert second.code == 0 and "no changes (5 device(s) up to date)" in second.out, second.out
    assert {r["name"]: r for r in json.loads(cli("device", "list", "--json").out)} == revisions

    write_inventory(inv, interval_of_leaf3="1m", with_spine2=False)
    dry = cli("device", "sync", str(inv), "--prune", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    plan = json.loads(dry.out)["plan"]
    assert plan["add"] == [] and [r["name"] for r in plan["remove"]] == ["old-1", "spine-2"]
    assert [c["name"] for c in plan["change"]] == ["leaf-3"]
    assert list(plan["change"][0]["fields"]) == ["subscriptions"]
    assert "every 60s" in plan["change"][0]["fields"]["subscriptions"]["to"][0]
    assert names(cli) == ["leaf-1", "leaf-2", "leaf-3", "old-1", "spine-1", "spine-2"]  # dry run: untouched

    third = cli("device", "sync", str(inv), "--prune", "--json")
    assert third.code == 0, third.err
    assert json.loads(third.out)["outcome"] == {"added": 0, "changed": 1, "removed": 2, "failed": {}}
    assert names(cli) == ["leaf-1", "leaf-2", "leaf-3", "spine-1"]
    after = {r["name"]: r for r in json.loads(cli("device", "list", "--json").out)}
    assert {n: after[n] for n in ("leaf-1", "leaf-2", "spine-1")} == {n: revisions[n] for n in ("leaf-1", "leaf-2", "spine-1")}
    assert {s["interval_s"] for s in after["leaf-3"]["subscriptions"]} == {60.0}
    fourth = cli("device", "sync", str(inv), "--prune")
    assert fourth.code == 0 and "no changes" in fourth.out


def test_sync_lists_every_problem_of_every_file_and_changes_nothing(cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "- {name: ok-1, address: 10.0.0.1, protocol: gnmi}\n"
        "- {name: bad-1, address: 10.0.0.2, protocol: telnet}\n"
        "- {name: bad-2, address: 10.0.0.3, protocol: gnmi, port: 99999, colour: red}\n"
        "- {name: ok-1, address: 10.0.0.9, protocol: gnmi}\n"
    )
    (tmp_path / "b.csv").write_text("name,address,protocol,interval\nbad-3,10.0.0.4,ssh,fast\n,10.0.0.5,ssh,\n")
    (tmp_path / "c.yml").write_text("devices: [unclosed\n")
    res = cli("device", "sync", str(tmp_path), "--prune")
    assert res.code == 2 and "Traceback" not in res.err
    err = res.err
    assert f"{tmp_path}/a.yaml:2: field 'protocol': protocol 'telnet' is unknown" in err
    assert f"{tmp_path}/a.yaml:3: field 'colour': unknown field" in err
    assert f"{tmp_path}/a.yaml:4: field 'name': duplicate device 'ok-1' (first at {tmp_path}/a.yaml:1)" in err
    assert f"{tmp_path}/b.csv:2: field 'interval': interval 'fast'" in err
    assert f"{tmp_path}/b.csv:3: field 'name': is required" in err
    assert f"{tmp_path}/c.yml:" in err and "not valid YAML" in err
    assert "6 problem(s)" in err, err
    assert names(cli) == []
    as_json = cli("device", "sync", str(tmp_path), "--prune", "--json")
    assert as_json.code == 2
    problems = json.loads(as_json.out)["errors"]
    assert len(problems) == 6 and {"file": f"{tmp_path}/a.yaml", "line": 3, "field": "colour",
                                   "message": f"unknown field (known: {', '.join(FIELDS)})"} in problems


def test_import_reports_every_error_of_a_file(cli, tmp_path: Path) -> None:
    f = tmp_path / "fleet.csv"
    f.write_text("name,address,protocol,port\nr1,10.0.0.1,gnmi,\nr2,300.0.0.1,gnmi,\nr3,10.0.0.3,ssh,abc\nr4,10.0.0.4,foo,\n")
    res = cli("device", "import", str(f))
    assert res.code == 2
    assert "3 problem(s)" in res.err
    for line, field in ((3, "address"), (4, "port"), (5, "protocol")):
        assert f"{f}:{line}: field '{field}'" in res.err
    assert names(cli) == []


def test_sync_refuses_an_empty_tree_and_a_missing_path(cli, tmp_path: Path) -> None:
    assert "no devices found" in one_line_error(cli("device", "sync", str(tmp_path), "--prune"))
    assert "no such file or directory" in one_line_error(cli("device", "sync", str(tmp_path / "nope")))


def test_a_concurrent_set_during_sync_loses_nothing(nats_server: NatsServer, swtel, tmp_path: Path) -> None:
    """While a sync applies a plan that changes 300 devices, another operator sets a tag on 30 of them.
    Every set survives (it retries on the newer revision); every device the sync could not write because of
    a set is reported as failed, not overwritten; a second sync then converges."""
    from swtel.cli.device_files import read_inventory

    assert swtel("--nats", nats_server.url, "nats", "init").code == 0
    f = tmp_path / "fleet.yaml"
    f.write_text("".join(f"- {{name: d{i:03}, address: 10.0.{i // 250}.{i % 250 + 1}, protocol: gnmi}}\n"
                         for i in range(300)))
    assert swtel("--nats", nats_server.url, "device", "sync", str(f)).code == 0
    f.write_text(f.read_text().replace("protocol: gnmi}", "protocol: gnmi, interval: 30s}"))
    desired = read_inventory([f])
    touched = [f"d{i:03}" for i in range(0, 300, 10)]

    async def go():
        nc = await nats.connect(nats_server.url)
        try:
            inv = await Inventory.open(nc.jetstream())
            plan = invsync.plan(desired, await inv.entries(), prune=False)
            assert len(plan.change) == 300
            sets = [inv.edit(n, lambda d: edit_device(d, set_tags={"owner": "ops"}), attempts=50) for n in touched]
            outcome, *_ = await asyncio.gather(invsync.apply(inv, plan, concurrency=16), *sets)
            return outcome, await inv.entries()
        finally:
            await nc.close()

    outcome, current = asyncio.run(go())

    assert all(current[n][0].tags == {"owner": "ops"} for n in touched), "a concurrent set was lost"
    assert set(outcome.failed) <= set(touched)
    assert all("changed since it was read" in why for why in outcome.failed.values())
    assert outcome.changed + len(outcome.failed) == 300
    for name, (dev, _) in current.items():
        if name not in outcome.failed:
            assert {s.interval_s for s in dev.subscriptions} == {30.0}, name
    again = swtel("--nats", nats_server.url, "device", "sync", str(f), "--json")
    assert again.code == 0, again.err
    changed = [c["name"] for c in json.loads(again.out)["plan"]["change"]]
    assert changed == touched  # the files rule: the extra tag goes, the missed intervals come


def test_a_stale_plan_fails_only_the_device_changed_meanwhile(cli, tmp_path: Path, nats_server: NatsServer) -> None:
    """A plan whose device was changed meanwhile: that one fails (exit 1, named), the others are applied."""
    f = tmp_path / "x.yaml"
    f.write_text("- {name: a1, address: 10.0.0.1, protocol: gnmi}\n- {name: a2, address: 10.0.0.2, protocol: gnmi}\n")
    assert cli("device", "sync", str(f)).code == 0
    f.write_text("- {name: a1, address: 10.0.0.11, protocol: gnmi}\n- {name: a2, address: 10.0.0.12, protocol: gnmi}\n")

    async def stale_apply() -> invsync.Outcome:
        from swtel.cli.device_files import read_inventory

        nc = await nats.connect(nats_server.url)
        try:
            inv = await Inventory.open(nc.jetstream())
            plan = invsync.plan(read_inventory([f]), await inv.entries(), prune=False)
            await inv.edit("a2", lambda d: edit_device(d, port=1234))
            return await invsync.apply(inv, plan)
        finally:
            await nc.close()

    outcome = asyncio.run(stale_apply())
    assert outcome.changed == 1 and list(outcome.failed) == ["a2"]
    assert show(cli, "a2")["port"] == 1234 and show(cli, "a2")["address"] == "10.0.0.2"
    assert show(cli, "a1")["address"] == "10.0.0.11"


# ---- device list filters -------------------------------------------------------------------------------


def test_list_filters_by_tag_agent_status_and_protocol(swtel, nats_server: NatsServer, database_url: str) -> None:
    """A real agent holds two pinned devices; the hub's status table says one is down; a third device is
    pinned to an agent that does not run (unassigned)."""
    import time

    from support.agents import FAST_ENV, AgentProc
    from swtel.hub import devstatus
    from swtel.shared import wire

    env = {"SWTEL_NATS_URL": nats_server.url, "SWTEL_DATABASE_URL": database_url}

    def cli(*args: str):
        return swtel(*args, env=env)

    assert cli("nats", "init").code == 0 and cli("db", "migrate").code == 0
    for name, proto, site in (("r1", "gnmi", "dc1"), ("r2", "ssh", "dc1"), ("r3", "ssh", "dc2")):
        assert cli("device", "add", name, "--address", "10.0.0.1", "--protocol", proto, "--tag", f"site={site}").code == 0
    agent = AgentProc("agent-a", nats_server.url, env=FAST_ENV).start()
    try:
        deadline = time.monotonic() + 30
        while "agent-a" not in [a["id"] for a in json.loads(cli("agent", "list", "--json").out)]:
            assert time.monotonic() < deadline and agent.alive, agent.tail()
            time.sleep(0.2)
        assert cli("device", "pin", "r1", "agent-a").code == 0
        assert cli("device", "pin", "r2", "agent-a").code == 0
        assert cli("device", "pin", "r3", "agent-gone", "--force").code == 0

        def holders() -> dict[str, str | None]:
            return {r["name"]: r["agent"] for r in json.loads(cli("device", "list", "--json").out)}

        while holders() != {"r1": "agent-a", "r2": "agent-a", "r3": None}:
            assert time.monotonic() < deadline, (holders(), agent.tail())
            time.sleep(0.2)

        async def mark_down() -> None:
            conn = await asyncpg.connect(database_url)
            try:
                await devstatus.record(conn, [], [wire.Event(device="r2", agent="agent-a", kind="device_down",
                                                             ts=time.time_ns(), detail="3 failed attempts")])
            finally:
                await conn.close()

        asyncio.run(mark_down())
        assert names(cli, "--status", "down") == ["r2"]
        assert names(cli, "--status", "collecting") == ["r1"]
        assert names(cli, "--status", "unassigned") == ["r3"]
        assert names(cli, "--agent", "agent-a") == ["r1", "r2"]
        assert names(cli, "--tag", "site=dc1", "--protocol", "ssh") == ["r2"]
        assert names(cli, "--tag", "site=dc2", "--tag", "site=dc1") == ["r1", "r2", "r3"]  # one key: either value
        assert names(cli, "--tag", "site=dc3") == []
        table = cli("device", "list", "--status", "down")
        assert table.out.splitlines()[1].split()[:7] == ["r2", "10.0.0.1", "22", "ssh", "generic", "agent-a", "down"]
        assert "1 device(s) of 3" in table.err
    finally:
        agent.terminate()


def test_device_set_while_a_sync_process_applies_loses_nothing(swtel, nats_server: NatsServer, tmp_path: Path) -> None:
    """The commands as operators run them: `swtel device sync` in its own process changes 1,000 devices
    while `swtel device set` adds a tag to twenty of them. Every set lands; the sync names each device it
    could not write (changed since its plan) and wrote every other one; a second sync converges."""
    import os
    import subprocess
    import sys

    url = nats_server.url
    f = tmp_path / "fleet.yaml"
    f.write_text("".join(f"- {{name: d{i:04}, address: 10.1.{i // 250}.{i % 250 + 1}, protocol: gnmi}}\n"
                         for i in range(1000)))
    assert swtel("--nats", url, "nats", "init").code == 0
    assert swtel("--nats", url, "device", "sync", str(f)).code == 0
    f.write_text(f.read_text().replace("protocol: gnmi}", "protocol: gnmi, interval: 30s}"))
    touched = [f"d{i:04}" for i in range(0, 1000, 50)]

    env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
    sync = subprocess.Popen([str(Path(sys.executable).parent / "swtel"), "--nats", url, "device", "sync", str(f),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for name in touched:
            res = swtel("--nats", url, "device", "set", name, "--tag", "owner=ops")
            assert res.code == 0, res.err
        out, err = sync.communicate(timeout=240)
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.communicate()
    assert sync.returncode in (0, 1), err
    report = json.loads(out)
    outcome = report["outcome"]
    assert set(outcome["failed"]) <= set(touched) and (sync.returncode == 1) == bool(outcome["failed"])
    assert outcome["changed"] + len(outcome["failed"]) == 1000
    planned = {c["name"]: c["fields"] for c in report["plan"]["change"]}
    rows = {r["name"]: r for r in json.loads(swtel("--nats", url, "device", "list", "--json").out)}
    for name in touched:
        # a set made before the sync read the inventory is in its plan, shown as a change it makes (the files
        # rule); a set made after is kept, and the sync's write of that device fails instead
        seen_by_plan = planned[name].get("tags") == {"from": {"owner": "ops"}, "to": {}}
        assert seen_by_plan or rows[name]["tags"] == {"owner": "ops"}, f"the set on {name} was lost silently"
    for name, row in rows.items():
        want = 10.0 if name in outcome["failed"] else 30.0
        assert {s["interval_s"] for s in row["subscriptions"]} == {want}, name
    again = json.loads(swtel("--nats", url, "device", "sync", str(f), "--json").out)
    left = sorted(n for n in touched if rows[n]["tags"])
    assert [c["name"] for c in again["plan"]["change"]] == left  # converges: the hand-set tags go, as planned
    assert again["outcome"] is None if not left else again["outcome"]["failed"] == {}


def test_writes_nats_does_not_answer_are_reported_not_raised(swtel, nats_server: NatsServer, tmp_path: Path) -> None:
    """The server stops answering (SIGSTOP) while a plan is applied: each unanswered device is reported as
    failed, none raises; after the server resumes, a second sync applies what is missing."""
    from swtel.cli.device_files import read_inventory

    assert swtel("--nats", nats_server.url, "nats", "init").code == 0
    f = tmp_path / "x.yaml"
    f.write_text("".join(f"- {{name: p{i:02}, address: 10.0.0.{i + 1}, protocol: gnmi}}\n" for i in range(20)))

    async def go() -> invsync.Outcome:
        nc = await nats.connect(nats_server.url, allow_reconnect=True)
        try:
            inv = await Inventory.open(nc.jetstream(timeout=1))
            plan = invsync.plan(read_inventory([f]), await inv.entries(), prune=False)
            nats_server.pause()
            try:
                return await invsync.apply(inv, plan)
            finally:
                nats_server.resume()
        finally:
            await nc.close()

    outcome = asyncio.run(go())
    assert outcome.added + len(outcome.failed) == 20 and outcome.failed, outcome
    assert all(why.startswith("NATS did not take the write") for why in outcome.failed.values()), outcome.failed
    again = swtel("--nats", nats_server.url, "device", "sync", str(f), "--json")
    assert again.code == 0, again.err
    # a write that timed out may still have landed when the server resumed: the second plan adds the rest
    assert {d["name"] for d in json.loads(again.out)["plan"]["add"]} <= set(outcome.failed)
    assert names(lambda *a: swtel("--nats", nats_server.url, *a)) == [f"p{i:02}" for i in range(20)]
