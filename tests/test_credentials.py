"""Credential references resolved on the agent host: systemd credentials, environment, secrets file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from swtel.agent.credentials import CredentialNotFound, Credentials, env_prefix
from swtel.shared.errors import InvalidInput


def test_systemd_credentials_directory_first(tmp_path: Path) -> None:
    (tmp_path / "core").write_text("netops:s3cret\n")
    (tmp_path / "dc1_edge").write_text('username = "edge"\npassword = "pw"\ntls_ca = "/etc/ca.pem"\n')
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "SWTEL_CRED_CORE_USERNAME": "other"}
    creds = Credentials(env=env)
    core = creds.resolve("core")
    assert (core.username, core.password) == ("netops", "s3cret")
    edge = creds.resolve("dc1/edge")  # "/" becomes "_" in the file name
    assert (edge.username, edge.password, edge.tls_ca) == ("edge", "pw", "/etc/ca.pem")


def test_environment_then_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[lab]\nusername = "filed"\npassword = "f"\n["dc1.core"]\nusername = "dotted"\n'
                       '[a.b]\nusername = "nested"\npassword = "n"\n')
    env = {"SWTEL_CRED_LAB_USERNAME": "env-user", "SWTEL_CRED_LAB_PASSWORD": "env-pw"}
    creds = Credentials(str(secrets), env=env)
    lab = creds.resolve("lab")
    assert (lab.username, lab.password) == ("env-user", "env-pw")
    assert creds.resolve("dc1.core").username == "dotted"
    assert creds.resolve("a.b").username == "nested"
    assert creds.resolve(None) is None
    assert env_prefix("dc1/core-2") == "SWTEL_CRED_DC1_CORE_2"


def test_secrets_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    secrets = tmp_path / "s.toml"
    secrets.write_text('[x]\nusername = "one"\n')
    creds = Credentials(str(secrets), env={})
    assert creds.resolve("x").username == "one"
    secrets.write_text('[x]\nusername = "two"\n')
    import os

    st = secrets.stat()
    os.utime(secrets, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert creds.resolve("x").username == "two"


def test_missing_reference_names_every_place_looked(tmp_path: Path) -> None:
    secrets = tmp_path / "s.toml"
    secrets.write_text("")
    creds = Credentials(str(secrets), env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    with pytest.raises(CredentialNotFound) as e:
        creds.resolve("nope")
    msg = str(e.value)
    assert "nope" in msg and "SWTEL_CRED_NOPE_USERNAME" in msg and str(secrets) in msg and str(tmp_path / "nope") in msg


def test_secrets_never_in_errors_reprs_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bad = tmp_path / "bad"
    bad.write_text('username = "u"\npassword = "hunter2" oops\n')
    creds = Credentials(env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    with pytest.raises(InvalidInput) as e:
        creds.resolve("bad")
    assert "hunter2" not in str(e.value)
    secrets = tmp_path / "s.toml"
    secrets.write_text('[r]\npassword = "hunter2"\n')  # no username
    with pytest.raises(InvalidInput, match="no username") as e2:
        Credentials(str(secrets), env={}).resolve("r")
    assert "hunter2" not in str(e2.value)
    (tmp_path / "good").write_text("u:hunter2")
    cred = creds.resolve("good")
    assert "hunter2" not in repr(cred)
    assert "hunter2" not in caplog.text


def test_unreadable_or_invalid_secrets_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read secrets file"):
        Credentials(str(tmp_path / "missing.toml"), env={}).resolve("x")
    broken = tmp_path / "broken.toml"
    broken.write_text("[x\nusername = 'a'")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        Credentials(str(broken), env={}).resolve("x")


def test_snmp_community_and_v3_user_from_every_source(tmp_path: Path) -> None:
    (tmp_path / "ro").write_text('community = "c0mm"\n')
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[v3]\nusername = "mon"\nauth_protocol = "SHA-256"\nauth_password = "a-secret"\n'
                       'priv_protocol = "aes256"\npriv_password = "p-secret"\n')
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "SWTEL_CRED_EDGE_COMMUNITY": "edge-comm",
           "SWTEL_CRED_CORE_USERNAME": "u", "SWTEL_CRED_CORE_AUTH_PROTOCOL": "sha512",
           "SWTEL_CRED_CORE_AUTH_PASSWORD": "core-auth"}
    creds = Credentials(str(secrets), env=env)
    assert creds.resolve("ro").community == "c0mm"
    assert (creds.resolve("edge").community, creds.resolve("edge").username) == ("edge-comm", "")
    core = creds.resolve("core")
    assert (core.username, core.auth_protocol, core.auth_password, core.priv_password) == ("u", "sha512", "core-auth", "")
    v3 = creds.resolve("v3")
    assert (v3.auth_protocol, v3.priv_protocol) == ("sha256", "aes256")  # spelled as snmpd does, normalised
    for secret in ("a-secret", "p-secret"):
        assert secret not in repr(v3)
    assert "c0mm" not in repr(creds.resolve("ro"))


@pytest.mark.parametrize("table,message", [
    ('[x]\nusername = "u"\nauth_protocol = "sha3"\nauth_password = "pw-secret"\n', "auth_protocol must be one of"),
    ('[x]\nusername = "u"\npriv_password = "pw-secret"\n', "privacy needs authentication"),
    ('[x]\nusername = "u"\ncommunity = 7\n', "community must be a string"),
])
def test_bad_snmp_settings_are_one_line_errors_without_the_secret(tmp_path: Path, table: str, message: str) -> None:
    secrets = tmp_path / "s.toml"
    secrets.write_text(table)
    with pytest.raises(InvalidInput, match=message) as e:
        Credentials(str(secrets), env={}).resolve("x")
    assert "pw-secret" not in str(e.value)


def test_enable_secret_from_every_source_and_never_in_a_repr(tmp_path: Path) -> None:
    creds_dir = tmp_path / "creds"
    creds_dir.mkdir()
    (creds_dir / "ios").write_text('username = "u"\npassword = "p"\nenable_secret = "en-dir"\n')
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[core]\nusername = "u"\npassword = "p"\nenable_secret = "en-file"\n'
                       '[bad]\nusername = "u"\nenable_secret = 5\n')
    env = {"CREDENTIALS_DIRECTORY": str(creds_dir), "SWTEL_CRED_EDGE_USERNAME": "u",
           "SWTEL_CRED_EDGE_ENABLE_SECRET": "en-env"}
    c = Credentials(str(secrets), env=env)
    assert [c.resolve(r).enable_secret for r in ("ios", "edge", "core")] == ["en-dir", "en-env", "en-file"]
    assert all("en-" not in repr(c.resolve(r)) for r in ("ios", "edge", "core"))
    with pytest.raises(InvalidInput, match="enable_secret must be a string"):
        c.resolve("bad")
    assert Credentials(None, env={"SWTEL_CRED_X_USERNAME": "u"}).resolve("x").enable_secret is None
