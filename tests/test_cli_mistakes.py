"""Each operator mistake from issue 19 gives one clear line and exit 2 (no traceback); a command that waits
says what for. Against a real nats-server and PostgreSQL where the command needs them."""

from __future__ import annotations

import io
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.natsserver import NatsServer
from support.ports import free_port


def one_line_error(res, code: int = 2) -> str:
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1, res.err
    return res.err.strip()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nats://:::", "NATS URL 'nats://:::' is not valid"),
        ("http://127.0.0.1:4222", "NATS URL 'http://127.0.0.1:4222' has the scheme 'http://'; use nats://"),
        ("nats://127.0.0.1:99999", "Port out of range"),
        ("nats://", "names no host"),
        ("nats://ops:s3cret@127.0.0.1:abc", "NATS URL 'nats://ops:***@127.0.0.1:abc' is not valid"),
    ],
)
def test_a_wrong_nats_url_is_one_line(swtel, url: str, message: str) -> None:
    for args in (["device", "list"], ["agent", "list"], ["nats", "init"]):
        err = one_line_error(swtel("--nats", url, *args))
        assert message in err and "s3cret" not in err


def test_an_unknown_log_level_is_one_line(swtel) -> None:
    assert "log level 'loud' is unknown" in one_line_error(swtel("--log-level", "loud", "device", "list"))
    assert "log level 'loud' is unknown" in one_line_error(swtel("hub", "run", env={"SWTEL_LOG_LEVEL": "loud"}))


def test_a_busy_hub_port_is_named(swtel) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = one_line_error(swtel("hub", "run", "--host", "127.0.0.1", "--port", str(port)))
        assert err == (f"error: hub port {port} on 127.0.0.1 is in use by another process: "
                       "choose another with --port or SWTEL_HUB_PORT")
        err = one_line_error(swtel("run", "--role", "both", env={"SWTEL_HUB_HOST": "127.0.0.1",
                                                                 "SWTEL_HUB_PORT": str(port)}))
        assert f"hub port {port} on 127.0.0.1 is in use" in err


def test_user_add_without_a_terminal_says_to_use_password_stdin(swtel, database_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a tty, as under a pipe or cron
    err = one_line_error(swtel("user", "add", "ada", "--role", "admin", "--db", database_url))
    assert err == "error: no terminal to ask for the password on: pipe it in with --password-stdin"
    assert "GetPassWarning" not in err
    err = one_line_error(swtel("nats", "passwd"))
    assert "pipe it in with --password-stdin" in err


def test_password_stdin_is_the_same_flag_everywhere_and_stdin_is_a_deprecated_alias(
        swtel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    new = swtel("nats", "passwd", "--password-stdin", "--cost", "10")
    assert new.code == 0 and new.out.startswith("$2b$10$") and new.err == ""
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    old = swtel("nats", "passwd", "--stdin", "--cost", "10")
    assert old.code == 0 and old.out.startswith("$2b$10$")
    assert "--stdin is deprecated: use --password-stdin" in old.err
    help_text = swtel("nats", "passwd", "--help").out
    assert "--password-stdin" in help_text and "--stdin " not in help_text  # the alias is hidden


def test_user_list_before_db_migrate_says_to_migrate(swtel, database_url: str) -> None:
    for args in (["user", "list"], ["user", "tokens"]):
        err = one_line_error(swtel(*args, "--db", database_url))
        assert err.endswith("has no switch-telemetry schema yet: run `swtel db migrate`"), err
    assert swtel("db", "migrate", "--db", database_url).code == 0
    listed = swtel("user", "list", "--db", database_url)
    assert listed.code == 0 and "no users" in listed.err


@pytest.mark.parametrize("url", ["not-a-url", "hooks.example.com/services/T0/B0/s3cr3t"])
def test_a_webhook_that_is_not_a_url_is_refused_without_echoing_it(swtel, url: str) -> None:
    # no database is reachable on this port: the URL is checked before connecting
    dsn = f"postgresql://127.0.0.1:{free_port()}/x"
    err = one_line_error(swtel("alert", "channel", "add", "ops", "--webhook", url, "--db", dsn))
    assert "--webhook needs a URL like https://HOST/PATH or env:VARIABLE" in err and "s3cr3t" not in err
    assert url not in err


def test_a_rule_on_an_unknown_device_warns_naming_it(swtel, nats_server: NatsServer, database_url: str) -> None:
    env = {"SWTEL_NATS_URL": nats_server.url, "SWTEL_DATABASE_URL": database_url}
    assert swtel("nats", "init", env=env).code == 0
    assert swtel("device", "add", "leaf-1", "--address", "10.0.0.1", "--protocol", "gnmi", env=env).code == 0
    rule = ["alert", "rule", "add", "--path", "/system/memory/state/used", "--above", "1"]
    known = swtel(*rule[:3], "r1", *rule[3:], "--device", "leaf-1", env=env)
    assert known.code == 0 and "warning" not in known.err
    typo = swtel(*rule[:3], "r2", *rule[3:], "--device", "leaf-l", env=env)
    assert typo.code == 0 and "added rule r2" in typo.out
    assert "warning: device 'leaf-l' is not in the inventory" in typo.err
    forced = swtel(*rule[:3], "r3", *rule[3:], "--device", "leaf-2", "--force", env=env)
    assert forced.code == 0 and forced.err == ""


def _read_until(proc: subprocess.Popen[bytes], pattern: str, timeout: float, seen: list[str]) -> re.Match[str]:
    """Read the process's stderr until a line matches ``pattern``; fail with what was seen."""
    sel = selectors.DefaultSelector()
    assert proc.stderr is not None
    sel.register(proc.stderr, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                seen.append(line.decode(errors="replace"))
                m = re.search(pattern, seen[-1])
                if m:
                    return m
    finally:
        sel.close()
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; stderr:\n" + "\n".join(seen[-30:]))


def test_agent_run_without_nats_says_what_it_waits_for(tmp_path: Path) -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
    proc = subprocess.Popen([sys.executable, "-m", "swtel.cli", "--nats", url, "agent", "run", "--id", "a1",
                             "--no-collect"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    server = NatsServer(port=port)
    seen: list[str] = []
    try:
        _read_until(proc, rf"WARNING swtel\.nats: waiting for NATS at {re.escape(url)} \(attempt 1\): ", 20, seen)
        assert proc.poll() is None, "the agent must keep waiting"
        server.start()
        m = _read_until(proc, rf"connected to NATS at {re.escape(url)} after (\d+) failed attempt\(s\)", 20, seen)
        assert int(m.group(1)) >= 1
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        server.cleanup()
    assert not any("Traceback" in line for line in seen), "\n".join(seen)


def test_long_names_are_not_cut_when_piped(swtel, nats_server: NatsServer) -> None:
    long = "leaf-0000." + "rack-a." * 12 + "dc1.example.net"
    assert swtel("--nats", nats_server.url, "nats", "init").code == 0
    assert swtel("--nats", nats_server.url, "device", "add", long, "--address", "10.0.0.1", "--protocol", "gnmi",
                 "--tag", "site=dc1", "--tag", "role=leaf-with-a-long-role-name").code == 0
    res = swtel("--nats", nats_server.url, "device", "list", env={"COLUMNS": "80"})
    assert res.code == 0
    header, row = res.out.splitlines()
    assert row.split()[0] == long and "…" not in res.out
    assert row.split()[-1] == "site=dc1,role=leaf-with-a-long-role-name"
    assert header.split() == ["NAME", "ADDRESS", "PORT", "PROTOCOL", "PLATFORM", "AGENT", "STATUS", "PINNED", "TAGS"]


def test_shell_completion_is_available(swtel) -> None:
    res = swtel("--show-completion", "bash")
    assert res.code == 0 and "_swtel_completion" in res.out and "complete " in res.out
    assert "--install-completion" in swtel("--help").out
    # what the installed bash function runs on <TAB>: the installed console script, as a shell would
    script = Path(sys.executable).parent / "swtel"
    done = subprocess.run([str(script)], env={**os.environ, "_SWTEL_COMPLETE": "complete_bash",
                                              "COMP_WORDS": "swtel device s", "COMP_CWORD": "2"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and set(done.stdout.split()) == {"set", "show", "sync"}, done


def _leaf_commands(group, prefix=()):  # type: ignore[no-untyped-def]

    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            yield from _leaf_commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_shows_an_example_in_its_help() -> None:
    import typer

    from swtel.cli.main import app

    missing = [" ".join(path) for path, cmd in _leaf_commands(typer.main.get_command(app))
               if "Example:" not in (cmd.help or "")]
    assert missing == [], f"commands without an example in --help: {missing}"


def test_json_outputs_stay_json_with_filters(swtel, nats_server: NatsServer) -> None:
    assert swtel("--nats", nats_server.url, "nats", "init").code == 0
    res = swtel("--nats", nats_server.url, "device", "list", "--json", "--status", "down")
    assert res.code == 0 and json.loads(res.out) == []
    assert "status 'sleepy' is unknown" in one_line_error(
        swtel("--nats", nats_server.url, "device", "list", "--status", "sleepy"))
    assert "protocol 'telnet' is unknown" in one_line_error(
        swtel("--nats", nats_server.url, "device", "list", "--protocol", "telnet"))


def test_long_lines_are_whole_when_piped(swtel, nats_server: NatsServer) -> None:
    paths = [f"/interfaces/interface[name=Ethernet{i}]/state/counters/in-octets" for i in range(1, 4)]
    assert swtel("--nats", nats_server.url, "nats", "init").code == 0
    args = ["device", "add", "leaf-1", "--address", "10.0.0.1", "--protocol", "gnmi"]
    for p in paths:
        args += ["--path", p]
    assert swtel("--nats", nats_server.url, *args).code == 0
    shown = swtel("--nats", nats_server.url, "device", "show", "leaf-1", env={"COLUMNS": "80"})
    line = next(x for x in shown.out.splitlines() if x.startswith("subscription"))
    assert line.endswith(" ".join(paths)), shown.out


def test_init_with_more_replicas_than_servers_is_one_line(swtel, nats_server: NatsServer) -> None:
    # a single server cannot place 3 replicas: NATS's refusal is one line naming the cause, no traceback
    res = swtel("--nats", nats_server.url, "nats", "init", "--replicas", "3")
    assert res.code != 0 and "Traceback" not in res.err
    line = one_line_error(res, res.code)
    assert "3 replica(s)" in line and "cluster nodes" in line
