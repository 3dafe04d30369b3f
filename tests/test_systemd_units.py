"""The unit files in systemd/: `systemd-analyze verify` accepts each, its sandbox scores well in
`systemd-analyze security`, and each has what docs/OPERATIONS.md promises (notify + watchdog, restart on
failure, no privileges, secrets as credentials, settings from environment files)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNITS = sorted((REPO / "systemd").glob("*.service"))
SWTEL_UNITS = [u for u in UNITS if u.name.startswith("swtel-")]
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt-get install systemd; .ci/run does it)"
)


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (systemd keys repeat)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(section, {}).setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A root for `--root`: the host's unit library, the units, and stand-ins for the binaries they run.

    `verify` checks that every Exec*= command exists; /opt/swtel/venv is where docs/OPERATIONS.md installs
    swtel and nats-server, so stand-ins are made there inside the temporary root, never on the host.
    """
    r = tmp_path_factory.mktemp("root")
    (r / "etc/systemd/system").mkdir(parents=True)
    # a copy (about 1 MB), not a symlink: --root resolves absolute links inside the root and would loop
    lib = Path("/usr/lib/systemd/system") if Path("/usr/lib/systemd/system").is_dir() else Path("/lib/systemd/system")
    shutil.copytree(lib, r / "usr/lib/systemd/system", symlinks=True)
    for u in UNITS:
        for section in unit(u).values():
            for key, values in section.items():
                if not key.startswith("Exec"):
                    continue
                for v in values:
                    binary = Path(v.lstrip("-@:+!").split()[0])
                    target = r / binary.relative_to("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if not target.exists():
                        target.write_text("#!/bin/sh\n")
                        target.chmod(0o755)
        shutil.copy(u, r / "etc/systemd/system" / u.name)
    yield r


def test_the_units_exist() -> None:
    assert [u.name for u in UNITS] == ["nats-server.service", "swtel-agent@.service", "swtel-hub.service"]


@needs_analyze
@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(path: Path, root: Path) -> None:
    result = subprocess.run(
        [ANALYZE, "verify", "--man=no", f"--root={root}", str(root / "etc/systemd/system" / path.name)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    # verify exits 0 on unknown keys and bad values, only warning about them: any output is a failure.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), result.stderr + result.stdout


@needs_analyze
def test_verify_would_catch_a_mistake(root: Path) -> None:
    """The check above can fail: a typo in a copy of a unit is reported."""
    bad = root / "etc/systemd/system/swtel-typo.service"
    bad.write_text((REPO / "systemd/swtel-hub.service").read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    try:
        result = subprocess.run([ANALYZE, "verify", "--man=no", f"--root={root}", str(bad)],
                                check=False, capture_output=True, text=True, timeout=60)
        assert "ProtectSytem" in result.stderr
    finally:
        bad.unlink()


@needs_analyze
@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_sandbox_exposure_is_low(path: Path, root: Path) -> None:
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", f"--root={root}", str(root / "etc/systemd/system" / path.name)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout + result.stderr)
    assert m, result.stdout[-2000:] + result.stderr
    assert float(m.group(1)) <= 2.0, result.stdout


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_hardening_and_restart(path: Path) -> None:
    s = unit(path)["Service"]
    for key, value in {
        "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes", "Restart": "on-failure",
        "ProtectHome": "yes", "CapabilityBoundingSet": "",
    }.items():
        assert s.get(key) == [value], f"{path.name}: {key}={s.get(key)}"
    assert s.get("DynamicUser") == ["yes"] or s.get("User"), f"{path.name}: needs a dedicated or dynamic user"
    assert any(v.startswith("-/etc/") for v in s.get("EnvironmentFile", [])), f"{path.name}: settings file"
    assert s.get("LoadCredential"), f"{path.name}: secrets come as credentials"
    assert "WantedBy" in unit(path)["Install"]


@pytest.mark.parametrize("path", SWTEL_UNITS, ids=lambda p: p.name)
def test_agent_and_hub_notify_with_a_watchdog_and_stop_gracefully(path: Path) -> None:
    s = unit(path)["Service"]
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] and s["WatchdogSec"][0] != "0"
    assert s["KillSignal"] == ["SIGTERM"] and s["KillMode"] == ["mixed"] and s["TimeoutStopSec"]
    assert s["RestartPreventExitStatus"] == ["2"]  # a configuration mistake (exit 2) is not retried
    assert s["ExecStart"][0].startswith("/opt/swtel/venv/bin/swtel ")
    env = dict(v.split("=", 1) for v in s["Environment"] for v in v.split())
    # every credential is used through a setting pointing into the credentials directory
    for cred in s["LoadCredential"]:
        name = cred.split(":", 1)[0]
        assert f"%d/{name}" in env.values(), f"{path.name}: credential {name} is loaded but no setting uses it"
    assert env["SWTEL_NATS_INBOX_PREFIX"] in ("_INBOX_agent", "_INBOX_hub")
    permissions = (REPO / "nats/permissions.conf").read_text()
    assert f'"{env["SWTEL_NATS_INBOX_PREFIX"]}.>"' in permissions, "the unit's inbox prefix matches the server's"


def test_agent_unit_is_a_template_keyed_by_agent_id() -> None:
    s = unit(REPO / "systemd/swtel-agent@.service")["Service"]
    assert "SWTEL_AGENT_ID=%i" in s["Environment"]
    assert "-/etc/swtel/agent-%i.env" in s["EnvironmentFile"]


def test_nats_server_unit_uses_lame_duck_mode_and_the_static_host_config() -> None:
    s = unit(REPO / "systemd/nats-server.service")["Service"]
    assert s["KillSignal"] == ["SIGUSR2"]
    lame = re.search(r"lame_duck_duration:\s*(\d+)s", (REPO / "nats/static-host.conf").read_text())
    stop = re.fullmatch(r"(\d+)s", s["TimeoutStopSec"][0])
    assert lame and stop and int(stop.group(1)) > int(lame.group(1)) + 5, "stop timeout must outlast lame duck mode"
    assert "/run/credentials/nats-server.service/server-key.pem" in (REPO / "nats/static-host.conf").read_text()
    assert any(c.startswith("server-key.pem:") for c in s["LoadCredential"])


def test_units_parse_as_ini() -> None:
    for u in UNITS:  # no duplicate sections or stray text
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.read_string(u.read_text())
        assert set(cp.sections()) == {"Unit", "Service", "Install"}
