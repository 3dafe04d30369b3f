"""RFC 6242 framing: round trips in both framings over any split of the byte stream, the RFC's own
example, and garbage or oversized input failing at once with FramingError."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from swtel.agent import netconf_framing as fr

messages = st.lists(st.binary(min_size=1, max_size=300).filter(lambda b: fr.EOM not in b), min_size=1, max_size=5)


def decode(stream: bytes, cuts: list[int], chunked: bool, max_message: int = 1 << 20) -> list[bytes]:
    dec = fr.FrameDecoder(chunked=chunked, max_message=max_message)
    out, last = [], 0
    for cut in sorted({c % (len(stream) + 1) for c in cuts} | {len(stream)}):
        dec.feed(stream[last:cut])
        last = cut
        while (m := dec.pop()) is not None:
            out.append(m)
    return out


@settings(max_examples=200, deadline=None)
@given(msgs=messages, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20), chunked=st.booleans())
def test_round_trip_over_any_split(msgs: list[bytes], cuts: list[int], chunked: bool) -> None:
    enc = fr.encode_chunked if chunked else fr.encode_eom
    stream = b"".join(enc(m) for m in msgs)
    assert decode(stream, cuts, chunked) == msgs


def test_rfc_6242_example_chunked_message() -> None:
    stream = (b'\n#4\n<rpc\n#18\n message-id="102"\n\n#79\n     xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\n'
              b"  <close-session/>\n</rpc>\n##\n")
    assert decode(stream, [], chunked=True) == [
        b'<rpc message-id="102"\n     xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\n  <close-session/>\n</rpc>']


def test_large_message_is_split_into_several_chunks() -> None:
    msg = b"x" * (3 * fr.CHUNK_PART + 5)
    enc = fr.encode_chunked(msg)
    assert enc.count(b"\n#") == 5  # four chunks and the end marker
    assert decode(enc, [7, 70_000], chunked=True) == [msg]


def test_switching_to_chunked_after_hello_reads_buffered_bytes_with_the_new_framing() -> None:
    dec = fr.FrameDecoder()
    dec.feed(fr.encode_eom(b"<hello/>") + fr.encode_chunked(b"<rpc-reply/>"))
    assert dec.pop() == b"<hello/>"
    dec.chunked = True
    assert dec.pop() == b"<rpc-reply/>"
    assert dec.pop() is None


@pytest.mark.parametrize("junk", [
    b"\x00\xff\xfe garbage",  # not a chunk header at all
    b"\n#0\n",  # chunk size zero
    b"\n#012\nabc",  # leading zero
    b"\n#1a\n",  # not a number
    b"\n#\n",  # no size
    b"\n##\n",  # end of chunks without a chunk
    b"\n#12345678901\n",  # longer than any valid size
    b"\n#4294967296\n",  # one above the RFC maximum
    b"#4\nabcd",  # missing the leading newline
])
def test_chunked_garbage_fails_at_once(junk: bytes) -> None:
    dec = fr.FrameDecoder(chunked=True)
    with pytest.raises(fr.FramingError):
        dec.feed(junk)
        dec.pop()


def test_incomplete_but_valid_prefixes_wait_for_more() -> None:
    for prefix in (b"\n", b"\n#", b"\n#1", b"\n#12", b"\n#12\nabc", b"\n#"):
        dec = fr.FrameDecoder(chunked=True)
        dec.feed(prefix)
        assert dec.pop() is None


def test_oversized_messages_are_refused_in_both_framings() -> None:
    dec = fr.FrameDecoder(max_message=100)
    with pytest.raises(fr.FramingError):
        dec.feed(b"a" * 200)  # no end marker within the limit: fails without waiting for more
    dec = fr.FrameDecoder(chunked=True, max_message=100)
    dec.feed(b"\n#60\n" + b"a" * 60)
    with pytest.raises(fr.FramingError, match="exceeds"):
        dec.feed(b"\n#60\n")
        dec.pop()
    dec = fr.FrameDecoder(max_message=100)
    dec.feed(b"a" * 101)  # within the slack of one end marker: undecided until the marker arrives
    with pytest.raises(fr.FramingError):
        dec.feed(fr.EOM)
        dec.pop()


def test_a_long_end_of_message_reply_read_in_small_pieces_is_searched_once() -> None:
    """A reader pops after every packet: each pop searches only the new bytes for ]]>]]> (searching the
    whole buffer again each time is quadratic: seconds for 8 MB in 1 KiB packets)."""
    piece = b"<a>" + b"x" * 1017 + b"]]>"  # ends in a prefix of the marker
    dec = fr.FrameDecoder()
    t0 = time.process_time()
    for _ in range(8192):
        dec.feed(piece)
        assert dec.pop() is None
    dec.feed(b"]]>")  # completes the marker the last piece began
    assert dec.pop() == (piece * 8192)[:-3]
    assert time.process_time() - t0 < 1.0


def test_encoders_refuse_what_cannot_be_framed() -> None:
    with pytest.raises(ValueError):
        fr.encode_eom(b"a]]>]]>b")
    with pytest.raises(ValueError):
        fr.encode_chunked(b"")
