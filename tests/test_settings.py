import re
from pathlib import Path

import pytest

from swtel.shared import settings
from swtel.shared.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "swtel.toml"
    conf.write_text('[nats]\nurl = "nats://file:4222"\nreplicas = 3\n[agent]\ncapacity = 7\n')
    env = {"SWTEL_NATS_URL": "nats://env:4222", "SWTEL_AGENT_TAGS": "site=dc1,zone=a"}
    s = settings.load({"nats_url": None}, env=env, config_file=conf)
    assert s.nats_url == "nats://env:4222" and s.nats_replicas == 3 and s.agent_capacity == 7
    assert s.agent_tags == {"site": "dc1", "zone": "a"}
    s = settings.load({"nats_url": "nats://flag:4222"}, env=env, config_file=conf)
    assert s.nats_url == "nats://flag:4222"
    assert settings.load(env={}).nats_url == "nats://127.0.0.1:4222"


def test_env_strings_are_converted_and_bad_values_are_clear() -> None:
    assert settings.load(env={"SWTEL_HEARTBEAT_S": "0.5"}).heartbeat_s == 0.5
    with pytest.raises(InvalidInput, match="heartbeat_s"):
        settings.load(env={"SWTEL_HEARTBEAT_S": "soon"})


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    conf = tmp_path / "swtel.toml"
    conf.write_text('nats_ulr = "typo"\n')
    with pytest.raises(InvalidInput, match="nats_ulr"):
        settings.load(env={}, config_file=conf)


def test_secrets_are_redacted() -> None:
    s = settings.load(env={"SWTEL_NATS_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(s.redacted())


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "SETTINGS.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", doc, re.M))
    assert documented == set(settings.FIELDS), (set(settings.FIELDS) ^ documented)
