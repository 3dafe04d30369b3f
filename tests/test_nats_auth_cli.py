"""`swtel nats passwd` and `swtel nats nkey`: what they print works in a real nats-server's accounts file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from support.natsconfigs import INBOX, NATS_DIR, ConfiguredServer
from swtel.shared import settings
from swtel.shared.errors import ConnectFailed
from swtel.shared.natsconn import connect


def test_passwd_from_stdin_prints_a_bcrypt_hash(swtel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    result = swtel("nats", "passwd", "--stdin", "--cost", "10")
    assert result.code == 0, result.err
    hashed = result.out.strip()
    assert hashed.startswith("$2b$10$") and bcrypt.checkpw(b"correct horse battery", hashed.encode())
    assert "correct horse" not in result.out + result.err


def test_passwd_refuses_weak_input_in_one_line(swtel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    result = swtel("nats", "passwd", "--stdin")
    assert result.code == 2 and "too short" in result.err and "Traceback" not in result.err
    result = swtel("nats", "passwd", "--stdin", "--generate")
    assert result.code == 2 and "either --generate or --password-stdin" in result.err


@pytest.mark.asyncio
async def test_generated_password_works_end_to_end(swtel: Any, tmp_path: Path) -> None:
    """The operator flow of docs/OPERATIONS.md: generate into a credential file, paste the hash into
    accounts.conf, the service connects with nats_password_file; the old dev password stops working."""
    secret = tmp_path / "agent-nats-password"
    result = swtel("nats", "passwd", "--generate", "--out", str(secret), "--cost", "10")
    assert result.code == 0, result.err
    hashed = result.out.strip()
    password = secret.read_text().strip()
    assert secret.stat().st_mode & 0o777 == 0o600 and len(password) >= 24 and password not in result.out
    assert swtel("nats", "passwd", "--generate", "--out", str(secret)).code == 2  # never overwritten

    for name in ("single.conf", "permissions.conf"):
        shutil.copy(NATS_DIR / name, tmp_path / name)
    accounts = (NATS_DIR / "accounts.conf").read_text()
    dev_line = next(line for line in accounts.splitlines() if "user: swtel-agent," in line)
    old_hash = dev_line.split('password: "')[1].split('"')[0]
    (tmp_path / "accounts.conf").write_text(accounts.replace(old_hash, hashed))

    server = ConfiguredServer(tmp_path / "single.conf", tmp_path).start()
    try:
        base = {"nats_url": server.url, "nats_user": "swtel-agent", "nats_inbox_prefix": INBOX["agent"]}
        nc = await connect(settings.load({**base, "nats_password_file": str(secret)}, env={}), name="test-new-password")
        try:
            assert nc.is_connected
            await nc.request("$JS.API.INFO", b"", timeout=2)  # allowed for agents, answered on _INBOX_agent
        finally:
            await nc.close()
        with pytest.raises(ConnectFailed, match="refused the credentials"):
            await connect(settings.load({**base, "nats_password": "swtel-agent-dev"}, env={}), name="test-old-password")
    finally:
        server.kill()


def test_missing_password_file_is_a_one_line_error(swtel: Any, tmp_path: Path) -> None:
    result = swtel("nats", "init", env={"SWTEL_NATS_USER": "swtel-agent",
                                        "SWTEL_NATS_PASSWORD_FILE": str(tmp_path / "nope")})
    assert result.code == 2
    assert "cannot read the NATS password file" in result.err and "Traceback" not in result.err


def test_nkey_seed_and_public_key_belong_together(swtel: Any, tmp_path: Path) -> None:
    import nkeys

    result = swtel("nats", "nkey", "--seed-file", str(tmp_path / "a.nk"))
    assert result.code == 0, result.err
    seed = (tmp_path / "a.nk").read_text().strip()
    assert seed.startswith("SU") and seed not in result.out
    assert nkeys.from_seed(bytearray(seed.encode())).public_key.decode() == result.out.strip()
