"""Every inventory command against a real nats-server: success paths and each bad-input case."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from support.natsserver import NatsServer
from support.waits import eventually


async def wait_kv_writable(url: str) -> None:
    import nats

    from swtel.shared.inventory import snapshot

    async def writable() -> bool:
        nc = await nats.connect(url.split(","))
        try:
            for bucket in ("swtel_devices", "swtel_agents", "swtel_leases"):
                kv = await nc.jetstream(timeout=1).key_value(bucket)
                await kv.put("probe", b"x")
                await kv.purge("probe")
                await snapshot(kv)  # a watch needs a consumer, placed after the re-election too
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    await eventually(writable, timeout=20, what="every bucket to accept writes after losing a node", interval=0.2)


async def write_presence(url: str, agent: str) -> None:
    """An agent's presence entry, as a live agent writes it each heartbeat."""
    import nats

    from swtel.shared import naming, wire

    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(naming.BUCKET_AGENTS)
        await kv.put(naming.encode_name(agent), wire.encode_kv(
            wire.AgentPresence(id=agent, incarnation="i1", host="h", version="t", capacity=10)))
    finally:
        await nc.close()


@pytest.fixture
def cli(swtel, nats_server: NatsServer):
    """swtel bound to a fresh, initialised server."""

    def call(*args: str):
        return swtel("--nats", nats_server.url, *args)

    assert call("nats", "init").code == 0
    return call


def test_nats_init_is_idempotent_and_reports(swtel, nats_server: NatsServer) -> None:
    first = swtel("--nats", nats_server.url, "nats", "init", "--json")
    assert first.code == 0, first.err
    assert {r["name"]: r["action"] for r in json.loads(first.out)} == {
        "swtel_devices": "created", "swtel_agents": "created", "swtel_leases": "created", "swtel_hubs": "created", "swtel_outputs": "created",
        "SWTEL_TELEMETRY": "created", "SWTEL_EVENTS": "created",
    }
    again = swtel("--nats", nats_server.url, "nats", "init", "--json")
    assert {r["action"] for r in json.loads(again.out)} == {"ok"}
    assert swtel("--nats", nats_server.url, "nats", "init", "--check").code == 0


def test_incompatible_existing_config_is_reported_never_changed(swtel, nats_server: NatsServer) -> None:
    assert swtel("--nats", nats_server.url, "nats", "init").code == 0
    res = swtel("--nats", nats_server.url, "nats", "init", env={"SWTEL_STREAM_MAX_AGE_S": "60"})
    assert res.code == 2
    assert "SWTEL_TELEMETRY" in res.err and "max age 86400s != 60s" in res.err and "Traceback" not in res.err
    # unchanged: a plain init still finds everything ok
    assert {r["action"] for r in json.loads(swtel("--nats", nats_server.url, "nats", "init", "--json").out)} == {"ok"}


def test_check_on_an_empty_server_reports_missing(swtel, nats_server: NatsServer) -> None:
    res = swtel("--nats", nats_server.url, "nats", "init", "--check", "--json")
    assert res.code == 1 and {r["action"] for r in json.loads(res.out)} == {"missing"}


def test_add_list_show_remove(cli) -> None:
    res = cli("device", "add", "leaf-01.dc1", "--address", "10.0.0.1", "--protocol", "gnmi", "--port", "6030",
              "--platform", "eos", "--credential", "lab", "--tag", "site=dc1", "--tag", "role=leaf",
              "--interval", "5s", "--path", "/interfaces/interface/state/counters")
    assert res.code == 0, res.err
    assert cli("device", "add", "spine-01", "--address", "spine-01.example.net", "--protocol", "netconf").code == 0
    rows = json.loads(cli("device", "list", "--json").out)
    assert [r["name"] for r in rows] == ["leaf-01.dc1", "spine-01"]
    leaf = rows[0]
    assert {k: leaf[k] for k in ("name", "address", "protocol", "agent", "port")} == {
        "name": "leaf-01.dc1", "address": "10.0.0.1", "protocol": "gnmi", "agent": None, "port": 6030}
    assert leaf["tags"] == {"site": "dc1", "role": "leaf"} and leaf["credential"] == "lab"
    assert leaf["subscriptions"] == [{"name": "custom", "paths": ["/interfaces/interface/state/counters"], "interval_s": 5.0}]
    assert rows[1]["port"] == 830
    table = cli("device", "list")
    assert "leaf-01.dc1" in table.out and "spine-01.example.net" in table.out
    shown = json.loads(cli("device", "show", "leaf-01.dc1", "--json").out)
    assert shown["platform"] == "eos"
    assert "10.0.0.1" in cli("device", "show", "leaf-01.dc1").out
    assert cli("device", "remove", "spine-01").code == 0
    assert [r["name"] for r in json.loads(cli("device", "list", "--json").out)] == ["leaf-01.dc1"]


def test_pin_and_unpin(cli, nats_server: NatsServer) -> None:
    cli("device", "add", "r1", "--address", "10.0.0.1", "--protocol", "ssh")
    refused = cli("device", "pin", "r1", "agent-a")
    assert refused.code == 2 and refused.err.strip() == (
        "error: agent 'agent-a' is not alive (no agent is alive now); pin anyway with --force")
    assert json.loads(cli("device", "show", "r1", "--json").out)["pinned"] is None
    asyncio.run(write_presence(nats_server.url, "agent-b"))
    typo = cli("device", "pin", "r1", "agent-c")
    assert typo.code == 2 and "agent 'agent-c' is not alive (live agents: agent-b)" in typo.err
    assert cli("device", "pin", "r1", "agent-b").code == 0
    assert cli("device", "pin", "r1", "agent-a", "--force").code == 0
    assert json.loads(cli("device", "show", "r1", "--json").out)["pinned"] == "agent-a"
    assert cli("device", "unpin", "r1").code == 0
    assert json.loads(cli("device", "show", "r1", "--json").out)["pinned"] is None


def test_agent_and_lease_lists_are_empty_without_agents(cli) -> None:
    assert json.loads(cli("agent", "list", "--json").out) == []
    assert json.loads(cli("lease", "list", "--json").out) == []
    assert cli("lease", "list").code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "--address", "10.0.0.1", "--protocol", "gnmi"], "cannot be used"),
        (["ok", "--address", "300.1.1.1", "--protocol", "gnmi"], "address '300.1.1.1'"),
        (["ok", "--address", "bad host!", "--protocol", "gnmi"], "neither an IP address"),
        (["ok", "--address", "10.0.0.1", "--protocol", "telnet"], "protocol 'telnet' is unknown"),
        (["ok", "--address", "10.0.0.1", "--protocol", "gnmi", "--port", "70000"], "port 70000"),
        (["ok", "--address", "10.0.0.1", "--protocol", "gnmi", "--interval", "10x"], "interval '10x'"),
        (["ok", "--address", "10.0.0.1", "--protocol", "gnmi", "--interval", "0s"], "between 100ms and 24h"),
        (["ok", "--address", "10.0.0.1", "--protocol", "gnmi", "--platform", "vyos"], "platform 'vyos'"),
        (["ok", "--address", "10.0.0.1", "--protocol", "gnmi", "--tag", "novalue"], "not key=value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args: list[str], message: str) -> None:
    res = cli("device", "add", *args)
    assert res.code == 2, res
    assert message in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1, res.err


def test_duplicate_and_unknown_names(cli) -> None:
    cli("device", "add", "r1", "--address", "10.0.0.1", "--protocol", "ssh")
    res = cli("device", "add", "r1", "--address", "10.0.0.2", "--protocol", "ssh")
    assert res.code == 2 and "already exists" in res.err
    assert json.loads(cli("device", "show", "r1", "--json").out)["address"] == "10.0.0.1"  # nothing lost
    for args in (["show", "nope"], ["remove", "nope"], ["pin", "nope", "a1"], ["unpin", "nope"]):
        res = cli("device", *args)
        assert res.code == 2 and "does not exist" in res.err, (args, res)


def test_unreachable_nats_names_the_url(swtel) -> None:
    res = swtel("--nats", "nats://127.0.0.1:1", "device", "list")
    assert res.code == 2 and "nats://127.0.0.1:1" in res.err and "Traceback" not in res.err


def test_commands_before_init_say_what_to_do(swtel, nats_server: NatsServer) -> None:
    res = swtel("--nats", nats_server.url, "device", "list")
    assert res.code == 2 and "swtel nats init" in res.err


def test_import_yaml_and_csv(cli, tmp_path: Path) -> None:
    y = tmp_path / "fleet.yaml"
    y.write_text(
        "devices:\n"
        "  - name: r1.dc1\n    address: 10.0.0.1\n    protocol: gnmi\n    tags: {site: dc1}\n    interval: 30s\n"
        "  - name: r2.dc1\n    address: 10.0.0.2\n    protocol: ssh\n    platform: nxos\n    pin: agent-a\n"
    )
    res = cli("device", "import", str(y))
    assert res.code == 0, res.err
    c = tmp_path / "fleet.csv"
    c.write_text("name,address,protocol,port,tags,paths\nr3,10.0.0.3,netconf,8300,site=dc2;role=spine,/a;/b\n")
    assert cli("device", "import", str(c)).code == 0
    rows = {r["name"]: r for r in json.loads(cli("device", "list", "--json").out)}
    assert set(rows) == {"r1.dc1", "r2.dc1", "r3"}
    assert rows["r2.dc1"]["pinned"] == "agent-a" and rows["r2.dc1"]["platform"] == "nxos"
    assert rows["r3"]["port"] == 8300 and rows["r3"]["tags"] == {"site": "dc2", "role": "spine"}
    assert rows["r3"]["subscriptions"][0]["paths"] == ["/a", "/b"]
    assert rows["r1.dc1"]["subscriptions"][0]["interval_s"] == 30.0


@pytest.mark.parametrize(
    ("name", "text", "expect"),
    [
        ("bad.yaml", "- name: ok1\n  address: 10.0.0.1\n  protocol: gnmi\n- name: ok2\n  address: 10.0.0.2\n  protocol: gnmi\n  port: 99999\n",
         "bad.yaml:4: field 'port'"),
        ("bad.yaml", "- name: ok1\n  address: 10.0.0.1\n  protocol: gnmi\n  colour: red\n", "bad.yaml:1: field 'colour': unknown field"),
        ("bad.yaml", "- name: ok1\n  protocol: gnmi\n", "bad.yaml:1: field 'address': is required"),
        ("bad.yaml", "- name: [unclosed\n", "bad.yaml:2: not valid YAML"),
        ("bad.csv", "name,address,protocol\nok1,10.0.0.1,gnmi\nok2,10.0.0.2,telnet\n", "bad.csv:3: field 'protocol'"),
        ("bad.csv", "name,address,protocol\nok1,10.0.0.1,gnmi\nok1,10.0.0.2,gnmi\n", "bad.csv:3: field 'name': duplicate device 'ok1'"),
        ("bad.csv", "name,adress,protocol\n", "bad.csv:1: field 'adress': unknown column"),
        ("bad.txt", "x", "unknown file type"),
    ],
)
def test_import_is_all_or_nothing_with_file_line_and_field(cli, tmp_path: Path, name: str, text: str, expect: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    res = cli("device", "import", str(f))
    assert res.code == 2, res
    assert expect in res.err, res.err
    assert json.loads(cli("device", "list", "--json").out) == []


def test_import_refuses_names_already_in_the_inventory(cli, tmp_path: Path) -> None:
    cli("device", "add", "r2", "--address", "10.9.9.9", "--protocol", "ssh")
    f = tmp_path / "fleet.csv"
    f.write_text("name,address,protocol\nr1,10.0.0.1,gnmi\nr2,10.0.0.2,gnmi\n")
    res = cli("device", "import", str(f))
    assert res.code == 2 and "r2" in res.err and "nothing was imported" in res.err
    assert [r["name"] for r in json.loads(cli("device", "list", "--json").out)] == ["r2"]


def test_secrets_never_reach_kv_or_json(cli, nats_server: NatsServer) -> None:
    cli("device", "add", "r1", "--address", "10.0.0.1", "--protocol", "ssh", "--credential", "lab")
    out = cli("device", "list", "--json").out + cli("device", "show", "r1", "--json").out
    assert "password" not in out.lower()


@pytest.mark.cluster
def test_init_with_three_replicas_on_a_cluster(swtel, nats_cluster) -> None:
    res = swtel("--nats", nats_cluster.url, "nats", "init", "--replicas", "3", "--json")
    assert res.code == 0, res.err
    assert {r["action"] for r in json.loads(res.out)} == {"created"}
    assert swtel("--nats", nats_cluster.url, "device", "add", "r1", "--address", "10.0.0.1", "--protocol", "ssh").code == 0
    nats_cluster.nodes[0].kill()  # losing one node keeps the R3 buckets writable (after a re-election)
    url = ",".join(n.url for n in nats_cluster.nodes[1:])
    asyncio.run(wait_kv_writable(url))
    res = swtel("--nats", url, "device", "add", "r2", "--address", "10.0.0.2", "--protocol", "ssh")
    assert res.code == 0, res.err
    # right after a re-election a request can still time out (the CLI then says to try again): retry, bounded
    for _ in range(10):
        listed = swtel("--nats", url, "device", "list", "--json")
        if listed.code == 0 or "did not answer in time" not in listed.err:
            break
    assert listed.code == 0, listed.err
    assert [r["name"] for r in json.loads(listed.out)] == ["r1", "r2"]


def test_init_raises_the_lease_history_in_place(swtel, nats_server: NatsServer) -> None:
    """A bucket made before fencing needed history (history 1) is upgraded by init: fencing proves older
    holders' tokens from it (hub/fencing.py); more history is harmless to running agents."""
    assert swtel("--nats", nats_server.url, "nats", "init", env={"SWTEL_LEASE_HISTORY": "2"}).code == 0
    res = swtel("--nats", nats_server.url, "nats", "init", "--json")
    assert res.code == 0, res.err
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert rows["swtel_leases"]["action"] == "updated" and "16" in rows["swtel_leases"]["detail"]
    assert {r["action"] for r in json.loads(swtel("--nats", nats_server.url, "nats", "init", "--json").out)} == {"ok"}
