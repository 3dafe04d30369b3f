"""RFC 6242 message framing for NETCONF over SSH, shared by the simulator and the collector.

Two framings exist. ``<hello>`` is always sent with the NETCONF 1.0 end-of-message marker
(``]]>]]>``); when both peers advertise ``urn:ietf:params:netconf:base:1.1`` every later message uses
chunked framing (``\\n#<len>\\n<bytes>`` … ``\\n##\\n``). The decoder is incremental and strict: any
byte that breaks the grammar, or a message larger than ``max_message``, raises :class:`FramingError`
(the session is then unusable and the caller closes it). Nothing here buffers more than ``max_message``
plus one read.
"""

from __future__ import annotations

EOM = b"]]>]]>"
BASE_1_0 = "urn:ietf:params:netconf:base:1.0"
BASE_1_1 = "urn:ietf:params:netconf:base:1.1"
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
MAX_CHUNK = 4294967295  # RFC 6242: chunk-size is 1..4294967295
CHUNK_PART = 64 * 1024  # encoder's chunk size; any size is valid, this keeps each header small


class FramingError(Exception):
    """The peer's bytes are not valid NETCONF framing (garbage, a bad chunk header, an oversized message)."""


def encode_eom(message: bytes) -> bytes:
    if EOM in message:
        raise ValueError("a NETCONF 1.0 message cannot contain ]]>]]>")
    return message + EOM


def encode_chunked(message: bytes) -> bytes:
    if not message:
        raise ValueError("a chunked NETCONF message cannot be empty")
    parts = []
    for i in range(0, len(message), CHUNK_PART):
        part = message[i : i + CHUNK_PART]
        parts.append(b"\n#%d\n" % len(part))
        parts.append(part)
    parts.append(b"\n##\n")
    return b"".join(parts)


class FrameDecoder:
    """Incremental decoder: ``feed()`` bytes, then ``pop()`` whole messages (``None`` until one is complete).

    ``chunked`` may be switched between messages (after the hello exchange); bytes already buffered are
    then read with the new framing, which is what RFC 6242 requires.
    """

    def __init__(self, *, chunked: bool = False, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.chunked = chunked
        self.max_message = max_message
        self._buf = bytearray()
        self._parts: list[bytes] = []  # chunks of the message being assembled (chunked framing)
        self._size = 0
        self._searched = 0  # end-of-message framing: bytes of _buf already searched for the marker

    def feed(self, data: bytes) -> None:
        self._buf += data
        limit = self.max_message + len(EOM)
        # a whole message's worth without an end marker: garbage, or a peer that ignores our limit
        if not self.chunked and len(self._buf) > limit and EOM not in self._buf[:limit]:
            raise FramingError(f"no end-of-message marker within {self.max_message} bytes")

    @property
    def buffered(self) -> int:
        return len(self._buf) + self._size

    def pop(self) -> bytes | None:
        return self._pop_chunked() if self.chunked else self._pop_eom()

    def _pop_eom(self) -> bytes | None:
        # search only what arrived since the last pop (and a marker's length before it, for a split
        # marker): a reader pops after every packet, and rescanning a growing reply each time is quadratic
        end = self._buf.find(EOM, max(0, self._searched - len(EOM) + 1))
        if end < 0:
            self._searched = len(self._buf)
            return None
        self._searched = 0
        if end > self.max_message:
            raise FramingError(f"message of {end} bytes exceeds the limit of {self.max_message}")
        msg = bytes(self._buf[:end])
        del self._buf[: end + len(EOM)]
        return msg

    def _pop_chunked(self) -> bytes | None:
        buf = self._buf
        while True:
            if len(buf) < 4:
                self._check_prefix()
                return None
            if buf[0:2] != b"\n#":
                raise FramingError(f"expected a chunk header, got {bytes(buf[:16])!r}")
            if buf[2:4] == b"#\n":  # end of chunks
                if not self._parts:
                    raise FramingError("end-of-chunks marker without any chunk")
                del buf[:4]
                msg = b"".join(self._parts)
                self._parts, self._size = [], 0
                return msg
            nl = buf.find(b"\n", 2, 2 + 11)
            if nl < 0:
                self._check_prefix()
                return None
            digits = bytes(buf[2:nl])
            if not digits.isdigit() or digits[0:1] == b"0":
                raise FramingError(f"bad chunk size {digits[:16]!r}")
            size = int(digits)
            if size > MAX_CHUNK:
                raise FramingError(f"chunk size {size} exceeds the RFC 6242 maximum")
            if self._size + size > self.max_message:
                raise FramingError(f"message exceeds the limit of {self.max_message} bytes")
            start = nl + 1
            if len(buf) < start + size:
                return None
            self._parts.append(bytes(buf[start : start + size]))
            self._size += size
            del buf[: start + size]

    def _check_prefix(self) -> None:
        """Reject an impossible header early, so garbage fails now instead of at a timeout."""
        buf = self._buf
        head = bytes(buf[:13])
        if head and not b"\n#".startswith(head[:2]):
            raise FramingError(f"expected a chunk header, got {head!r}")
        if len(head) > 2 and head[2:3] != b"#":
            body = head[2:]
            if not body.rstrip(b"\n").isdigit() or body[0:1] == b"0":
                raise FramingError(f"bad chunk header {head!r}")
        if len(buf) >= 13 and buf.find(b"\n", 2, 13) < 0:
            raise FramingError(f"chunk header too long: {head!r}")
