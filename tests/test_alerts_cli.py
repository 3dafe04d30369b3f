"""``swtel alert …`` against a real PostgreSQL: success paths and each bad-input case as one line, exit 2."""

from __future__ import annotations

import asyncio
import json

import pytest

from support.alertdb import alert_pool
from swtel.hub.alerts.engine import Engine
from swtel.hub.alerts.sources import LiveSource
from swtel.shared import wire

CPU = "/system/cpus/cpu[index=0]/state/total/instant"
ERR = "/interfaces/interface[name=*]/state/counters/in-errors"


@pytest.fixture
def cli(swtel, database_url: str):
    def run(*args: str, env: dict[str, str] | None = None):
        return swtel(*args, env={"SWTEL_DATABASE_URL": database_url, **(env or {})})
    return run


def one_line_error(res, code: int = 2) -> str:
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err and res.err.strip().count("\n") == 0, res.err
    return res.err


def test_rules_channels_add_list_remove(cli) -> None:
    assert cli("alert", "channel", "add", "ops", "--webhook", "http://127.0.0.1:9000/alerts/tok3n").code == 0
    res = cli("alert", "channel", "add", "mail", "--email", "noc@example.com", "--smtp", "127.0.0.1:2525",
              "--smtp-user", "alerts", "--smtp-password-env", "SMTP_PW")
    assert res.code == 0, res.err
    res = cli("alert", "channel", "list")
    assert "http://127.0.0.1:9000/…" in res.out and "tok3n" not in res.out
    assert "noc@example.com via 127.0.0.1:2525 as alerts (password from $SMTP_PW)" in res.out

    res = cli("alert", "rule", "add", "leaf-errors", "--tag", "role=leaf", "--tag", "site=ams", "--path", ERR,
              "--rate-increase", "5", "--for", "2m", "--cooldown", "30m", "--severity", "critical",
              "--channel", "ops", "--channel", "mail")
    assert res.code == 0, res.err
    assert "added rule leaf-errors: role=leaf,site=ams" in res.out and "rate > 5/s for 2m, critical → ops, mail" in res.out
    assert cli("alert", "rule", "add", "quiet", "--device", "sw1", "--path", CPU, "--absent", "5m").code == 0
    rules = json.loads(cli("alert", "rule", "list", "--json").out)
    assert [r["name"] for r in rules] == ["leaf-errors", "quiet"]
    assert rules[0]["path"] == ERR
    assert rules[0]["tags"] == {"role": "leaf", "site": "ams"} and rules[0]["for_s"] == 120
    assert rules[0]["cooldown_s"] == 1800 and rules[0]["channels"] == ["ops", "mail"]
    assert rules[1]["condition"] == "absent" and rules[1]["threshold"] == 300 and rules[1]["device"] == "sw1"
    assert f"added rule quiet: sw1 {CPU} no data for 5m" in cli(
        "alert", "rule", "add", "quiet2", "--device", "sw1", "--path", CPU, "--absent", "5m").out.replace("quiet2", "quiet")
    table = cli("alert", "rule", "list").out
    assert "no data for 5m" in table and "leaf-errors" in table
    assert ERR in table, "the [name=*] key was eaten as rich markup"

    assert "channel 'ops' is used by rule 'leaf-errors'" in one_line_error(cli("alert", "channel", "remove", "ops"))
    assert cli("alert", "rule", "remove", "leaf-errors").code == 0
    assert cli("alert", "channel", "remove", "ops").code == 0
    assert [r["name"] for r in json.loads(cli("alert", "rule", "list", "--json").out)] == ["quiet", "quiet2"]


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "sw1", "--path", CPU], "exactly one of --above X, --below X, --absent DURATION or --rate-increase X"),
    (["--device", "sw1", "--path", CPU, "--above", "1", "--below", "2"], "exactly one of --above"),
    (["--path", CPU, "--above", "1"], "exactly one of --device NAME or --tag k=v"),
    (["--device", "sw1", "--tag", "a=b", "--path", CPU, "--above", "1"], "exactly one of --device NAME or --tag"),
    (["--tag", "oops", "--path", CPU, "--above", "1"], "tag 'oops' is not key=value"),
    (["--device", "sw1", "--path", "interfaces/x", "--above", "1"], "must start with /"),
    (["--device", "sw1", "--path", "/a[name=x", "--above", "1"], "is malformed near"),
    (["--device", "sw1", "--path", "/a[name=x]/b]", "--above", "1"], "path '/a[name=x]/b]' is malformed near ']'"),
    (["--device", "sw1", "--path", CPU, "--absent", "soon"], "--absent 'soon' is not a duration"),
    (["--device", "sw1", "--path", CPU, "--absent", "0s"], "--absent needs a duration above zero"),
    (["--device", "sw1", "--path", CPU, "--above", "1", "--for", "9d"], "--for must be between 0 and 7d"),
    (["--device", "sw1", "--path", CPU, "--above", "1", "--severity", "fatal"], "severity 'fatal' must be one of"),
    (["--device", "sw1", "--path", CPU, "--rate-increase", "-1"], "--rate-increase must be zero or more"),
    (["--device", "sw1", "--path", CPU, "--above", "1", "--channel", "nope"], "channel 'nope' does not exist"),
])
def test_bad_rules_are_refused_with_one_line(cli, args: list[str], message: str) -> None:
    err = one_line_error(cli("alert", "rule", "add", "r", *args))
    assert message in err, err
    assert json.loads(cli("alert", "rule", "list", "--json").out) == [], "a refused rule was stored"


def test_bad_channels_and_names(cli) -> None:
    assert "exactly one of --webhook" in one_line_error(cli("alert", "channel", "add", "x"))
    assert "http(s):// URL" in one_line_error(cli("alert", "channel", "add", "x", "--webhook", "ftp://h/p"))
    assert "--email needs --smtp" in one_line_error(cli("alert", "channel", "add", "x", "--email", "a@b"))
    assert "address(es)" in one_line_error(cli("alert", "channel", "add", "x", "--email", "nobody", "--smtp", "h"))
    assert "channel name 'bad name'" in one_line_error(cli("alert", "channel", "add", "bad name", "--slack", "http://h/x"))
    assert cli("alert", "channel", "add", "x", "--slack", "env:SLACK_URL").code == 0
    assert "already exists" in one_line_error(cli("alert", "channel", "add", "x", "--slack", "env:OTHER"))
    assert "rule 'nope' does not exist" in one_line_error(cli("alert", "rule", "remove", "nope"))
    assert cli("alert", "rule", "add", "r", "--device", "d", "--path", CPU, "--above", "1").code == 0
    assert "rule 'r' already exists" in one_line_error(cli("alert", "rule", "add", "r", "--device", "d", "--path",
                                                               CPU, "--above", "1"))


def test_dead_database_is_one_line_naming_the_dsn_without_its_password(swtel) -> None:
    from support.ports import free_port

    dsn = f"postgresql://alerts:hunter2@127.0.0.1:{free_port()}/swtel"
    for args in (["alert", "list"], ["alert", "rule", "list", "--db", dsn]):
        res = swtel(*args, env={"SWTEL_DATABASE_URL": dsn})
        err = one_line_error(res)
        assert "cannot connect to PostgreSQL at postgresql://alerts:***@127.0.0.1:" in err
        assert "hunter2" not in err + res.out


def test_alert_list_ack_and_history(cli, database_url: str) -> None:
    assert cli("alert", "rule", "add", "cpu-high", "--device", "sw1", "--path", CPU, "--above", "90").code == 0

    async def fire() -> None:
        src = LiveSource([wire.Device(name="sw1", address="127.0.0.1", port=9339, protocol="gnmi")])
        src.observe("sw1", CPU, 97.5, 1_800_000_000)
        async with alert_pool(database_url) as pool:
            await Engine(pool, src).evaluate_once(1_800_000_000)

    asyncio.run(fire())
    (alert,) = json.loads(cli("alert", "list", "--json").out)
    assert alert["state"] == "firing" and alert["rule"] == "cpu-high" and alert["value"] == 97.5
    assert alert["condition"] == "> 90" and not alert["acknowledged"]
    table = cli("alert", "list").out
    assert "firing" in table and "cpu-high" in table and "97.5" in table
    res = cli("alert", "ack", str(alert["id"]), "--by", "alice")
    assert res.code == 0 and f"acknowledged alert {alert['id']} as alice" in res.out
    assert "already acknowledged by alice" in one_line_error(cli("alert", "ack", str(alert["id"])))
    assert "alert 12345 does not exist" in one_line_error(cli("alert", "ack", "12345"))
    assert json.loads(cli("alert", "list", "--json").out)[0]["acked_by"] == "alice"
    hist = json.loads(cli("alert", "history", "--json").out)
    assert [(h["from_state"], h["to_state"]) for h in hist] == [("firing", "acknowledged"), ("ok", "firing")]
    assert hist[0]["detail"] == "by alice"
    assert json.loads(cli("alert", "outbox", "--json").out) == []
