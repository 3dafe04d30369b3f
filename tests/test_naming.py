import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swtel.shared import naming
from swtel.shared.errors import InvalidInput

NAME_CHARS = st.sampled_from("abcXYZ0189._:-")
names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("aZ09"),
    st.text(NAME_CHARS, max_size=60),
)
KV_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")


@given(names)
def test_encoding_round_trips_and_is_one_subject_token(name: str) -> None:
    token = naming.encode_name(name)
    assert naming.decode_name(token) == name
    assert "." not in token and "*" not in token and ">" not in token
    assert KV_KEY.match(token), token


@given(names, names)
def test_encoding_is_injective(a: str, b: str) -> None:
    if a != b:
        assert naming.encode_name(a) != naming.encode_name(b)


@pytest.mark.parametrize("bad", ["", "with space", "star*", "gt>", "-leading", "ünïcode", "a" * 129, "tab\tx"])
def test_unencodable_names_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(InvalidInput, match="device name"):
        naming.encode_name(bad)


@pytest.mark.parametrize("token", ["a.b", "=4", "=zz", "=41"])  # "=41" is "A" but not canonical
def test_decoding_rejects_tokens_the_encoder_never_makes(token: str) -> None:
    with pytest.raises(InvalidInput):
        naming.decode_name(token)


def test_subjects_carry_the_encoded_device() -> None:
    subject = naming.telemetry_subject("leaf-01.dc1", "interfaces")
    assert subject == "swtel.telemetry.leaf-01=2Edc1.interfaces"
    assert naming.device_from_subject(subject) == "leaf-01.dc1"
    assert naming.event_subject("2001:db8::1", "session_up") == "swtel.event.2001=3Adb8=3A=3A1.session_up"
    assert naming.msg_id("r1", 7, 3) == "r1:7:3"
