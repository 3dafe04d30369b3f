"""The simulator's NETCONF face over a raw asyncssh channel: hello, both framings, subtree filters,
get-config, close-session and rpc-errors."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import asyncssh
import pytest
import pytest_asyncio
from swtel.agent import netconf_framing as fr
from swtel.agent.sim.model import SimDevice
from swtel.agent.sim.netconf_server import serve_netconf
from swtel.agent.sim.ssh_server import Listeners

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
N = {"nc": BASE, "if": IF, "ocs": "http://openconfig.net/yang/system", "ocp": "http://openconfig.net/yang/platform"}


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Listeners]:
    dev = SimDevice("nc-sw1", platform="eos", interfaces=4)
    servers = await serve_netconf([dev], "127.0.0.1", [0])
    yield servers
    await servers.close()


class Client:
    """A minimal NETCONF client written out in the test, so the server is checked against RFC text."""

    def __init__(self, proc: asyncssh.SSHClientProcess) -> None:
        self.proc = proc
        self.dec = fr.FrameDecoder()
        self.raw = b""

    async def read(self) -> bytes:
        while (m := self.dec.pop()) is None:
            chunk = await asyncio.wait_for(self.proc.stdout.read(65536), 5)
            assert chunk, "the server closed the session"
            self.raw += chunk
            self.dec.feed(chunk)
        return m

    def send(self, msg: str) -> None:
        data = msg.encode()
        self.proc.stdin.write(fr.encode_chunked(data) if self.dec.chunked else fr.encode_eom(data))

    async def rpc(self, body: str, mid: str = "1") -> ET.Element:
        self.send(f'<rpc xmlns="{BASE}" message-id="{mid}">{body}</rpc>')
        reply = ET.fromstring(await self.read())
        assert reply.tag == f"{{{BASE}}}rpc-reply" and reply.get("message-id") == mid
        return reply


async def session(sim: Listeners, caps: list[str]) -> tuple[asyncssh.SSHClientConnection, Client, ET.Element]:
    conn = await asyncssh.connect("127.0.0.1", sim.ports[0], username="admin", password="admin",
                                  known_hosts=None, client_keys=None, config=None)
    c = Client(await conn.create_process(subsystem="netconf", encoding=None))
    hello = ET.fromstring(await c.read())
    body = "".join(f"<capability>{x}</capability>" for x in caps)
    c.proc.stdin.write(fr.encode_eom(f'<hello xmlns="{BASE}"><capabilities>{body}</capabilities></hello>'.encode()))
    c.dec.chunked = fr.BASE_1_1 in caps
    c.raw = b""
    return conn, c, hello


@pytest.mark.asyncio
async def test_hello_lists_base_versions_and_models(sim: Listeners) -> None:
    conn, _, hello = await session(sim, [fr.BASE_1_0])
    async with conn:
        caps = {c.text for c in hello.iterfind("nc:capabilities/nc:capability", N)}
        assert {fr.BASE_1_0, fr.BASE_1_1} <= caps
        assert any(c.startswith(IF + "?module=ietf-interfaces") for c in caps)
        assert hello.findtext("nc:session-id", namespaces=N).isdigit()


@pytest.mark.asyncio
@pytest.mark.parametrize("base11", [False, True])
async def test_framing_follows_the_hello_exchange(sim: Listeners, base11: bool) -> None:
    conn, c, _ = await session(sim, [fr.BASE_1_0, fr.BASE_1_1] if base11 else [fr.BASE_1_0])
    async with conn:
        reply = await c.rpc(f'<get><filter type="subtree"><interfaces xmlns="{IF}"/></filter></get>')
        assert len(reply.findall("nc:data/if:interfaces/if:interface", N)) == 4
        if base11:
            assert c.raw.startswith(b"\n#") and c.raw.endswith(b"\n##\n")
        else:
            assert c.raw.endswith(fr.EOM) and b"\n#" not in c.raw[:3]


@pytest.mark.asyncio
async def test_subtree_filter_content_match_and_selection(sim: Listeners) -> None:
    conn, c, _ = await session(sim, [fr.BASE_1_1])
    async with conn:
        reply = await c.rpc(f'<get><filter type="subtree"><interfaces xmlns="{IF}"><interface>'
                            f"<name>Ethernet2</name><statistics><in-octets/><out-errors/></statistics>"
                            f"</interface></interfaces></filter></get>")
        itfs = reply.findall("nc:data/if:interfaces/if:interface", N)
        assert [i.findtext("if:name", namespaces=N) for i in itfs] == ["Ethernet2"]
        assert [e.tag.split("}")[1] for e in itfs[0]] == ["name", "statistics"]
        assert [e.tag.split("}")[1] for e in itfs[0].find("if:statistics", N)] == ["in-octets", "out-errors"]
        assert int(itfs[0].findtext("if:statistics/if:in-octets", namespaces=N)) >= 0

        # content match only: the whole matching instance
        reply = await c.rpc(f'<get><filter type="subtree"><interfaces xmlns="{IF}"><interface>'
                            f"<name>Ethernet3</name></interface></interfaces></filter></get>", "2")
        itf = reply.find("nc:data/if:interfaces/if:interface", N)
        assert itf.findtext("if:oper-status", namespaces=N) in ("up", "down")
        assert itf.find("if:statistics/if:discontinuity-time", N) is not None

        # no match: empty data; a filter for another model: nothing from ietf-interfaces
        reply = await c.rpc(f'<get><filter type="subtree"><interfaces xmlns="{IF}"><interface>'
                            f"<name>Ethernet99</name></interface></interfaces></filter></get>", "3")
        assert len(reply.find("nc:data", N)) == 0
        reply = await c.rpc('<get><filter type="subtree"><system xmlns="http://openconfig.net/yang/system">'
                            "<memory/></system></filter></get>", "4")
        data = reply.find("nc:data", N)
        assert [e.tag for e in data] == [f"{{{N['ocs']}}}system"]
        assert int(data.findtext("ocs:system/ocs:memory/ocs:state/ocs:physical", namespaces=N)) == 16 * 1024**3


@pytest.mark.asyncio
async def test_get_without_filter_returns_every_model(sim: Listeners) -> None:
    conn, c, _ = await session(sim, [fr.BASE_1_1])
    async with conn:
        data = (await c.rpc("<get/>")).find("nc:data", N)
        assert {e.tag.split("}")[0][1:] for e in data} == {
            IF, "http://openconfig.net/yang/interfaces", N["ocs"], N["ocp"],
            "urn:ietf:params:xml:ns:yang:ietf-system"}  # system-state (platform, clock) for discovery
        assert data.findtext("ocp:components/ocp:component/ocp:name", namespaces=N) == "TempSensor1"


@pytest.mark.asyncio
async def test_get_config_and_close_session(sim: Listeners) -> None:
    conn, c, _ = await session(sim, [fr.BASE_1_0])
    async with conn:
        reply = await c.rpc("<get-config><source><running/></source></get-config>")
        itf = reply.find("nc:data/if:interfaces/if:interface", N)
        assert [e.tag.split("}")[1] for e in itf] == ["name", "type", "enabled"]  # config only, no state
        assert reply.findtext("nc:data/{urn:ietf:params:xml:ns:yang:ietf-system}system/"
                              "{urn:ietf:params:xml:ns:yang:ietf-system}hostname", namespaces=N) == "nc-sw1"
        err = await c.rpc("<get-config><source><candidate/></source></get-config>", "2")
        assert err.findtext("nc:rpc-error/nc:error-tag", namespaces=N) == "invalid-value"
        ok = await c.rpc("<close-session/>", "3")
        assert ok.find("nc:ok", N) is not None
        await asyncio.wait_for(c.proc.wait_closed(), 5)


@pytest.mark.asyncio
async def test_rpc_errors_for_unknown_operations_and_bad_rpcs(sim: Listeners) -> None:
    conn, c, _ = await session(sim, [fr.BASE_1_1])
    async with conn:
        err = await c.rpc("<lock><target><running/></target></lock>")
        assert err.findtext("nc:rpc-error/nc:error-tag", namespaces=N) == "operation-not-supported"
        err = await c.rpc('<get><filter type="xpath" select="/interfaces"/></get>', "2")
        assert err.findtext("nc:rpc-error/nc:error-tag", namespaces=N) == "operation-not-supported"
        c.send(f'<rpc xmlns="{BASE}"><get/></rpc>')
        err = ET.fromstring(await c.read())
        assert err.findtext("nc:rpc-error/nc:error-tag", namespaces=N) == "missing-attribute"
        c.send("<rpc this is not xml")
        err = ET.fromstring(await c.read())
        assert err.findtext("nc:rpc-error/nc:error-tag", namespaces=N) == "malformed-message"
        # the session survived all of that
        assert (await c.rpc("<get/>", "9")).find("nc:data", N) is not None
        # a framing error ends the session (RFC 6242)
        c.proc.stdin.write(b"\x00garbage")
        await asyncio.wait_for(c.proc.wait_closed(), 5)
