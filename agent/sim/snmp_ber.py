"""The part of SNMPv2c's BER encoding (RFC 3416, X.690) the simulator needs: decode a Get, GetNext or
GetBulk request, encode its Response.

Written here rather than taken from pysnmp: pysnmp's pyasn1 codec costs ~25× more CPU per varbind than
the collector's whole poll (measured, see docs/ARCHITECTURE.md), and a simulator serving thousands of
devices from one process must answer cheaply. It is checked against Net-SNMP's own client
(``snmpget``/``snmpbulkwalk``) and the collector's library in tests/test_snmp_sim.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

GET, GETNEXT, RESPONSE, SET, GETBULK = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5
INTEGER, OCTET_STRING, NULL, OID = 0x02, 0x04, 0x05, 0x06
SEQUENCE = 0x30
COUNTER32, GAUGE32, TIMETICKS, COUNTER64 = 0x41, 0x42, 0x43, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
V1, V2C = 0, 1


class BerError(ValueError):
    """Bytes that are not a well-formed SNMP message."""


@dataclass
class Request:
    version: int
    community: bytes
    pdu: int
    request_id: int
    non_repeaters: int  # error-status in Get/GetNext
    max_repetitions: int  # error-index in Get/GetNext
    oids: list[tuple[int, ...]]


# ---- decoding -----------------------------------------------------------------------------------------


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the TLV at ``pos``."""
    if pos + 2 > len(data):
        raise BerError("truncated")
    tag, n = data[pos], data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 4 or pos + k > len(data):
            raise BerError("bad length")
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > len(data):
        raise BerError("truncated")
    return tag, pos, pos + n


def _int(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big", signed=True)


def _oid(data: bytes, start: int, end: int) -> tuple[int, ...]:
    if start == end:
        raise BerError("empty OID")
    out: list[int] = []
    v = 0
    for b in data[start:end]:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            out.append(v)
            v = 0
    first = out[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *out[1:])


def decode_request(data: bytes) -> Request:
    tag, s, e = _tlv(data, 0)
    if tag != SEQUENCE:
        raise BerError("not a SEQUENCE")
    tag, vs, ve = _tlv(data, s)
    if tag != INTEGER:
        raise BerError("no version")
    version = _int(data, vs, ve)
    tag, cs, ce = _tlv(data, ve)
    if tag != OCTET_STRING:
        raise BerError("no community")
    pdu, ps, pe = _tlv(data, ce)
    fields = []
    pos = ps
    for _ in range(3):
        tag, fs, fe = _tlv(data, pos)
        if tag != INTEGER:
            raise BerError("bad PDU header")
        fields.append(_int(data, fs, fe))
        pos = fe
    tag, ls, le = _tlv(data, pos)
    if tag != SEQUENCE:
        raise BerError("no varbind list")
    oids = []
    pos = ls
    while pos < le:
        tag, bs, be = _tlv(data, pos)
        tag2, os_, oe = _tlv(data, bs)
        if tag != SEQUENCE or tag2 != OID:
            raise BerError("bad varbind")
        oids.append(_oid(data, os_, oe))
        pos = be
    return Request(version, bytes(data[cs:ce]), pdu, fields[0], fields[1], fields[2], oids)


# ---- encoding -----------------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(b),)) + b


def tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + _len(len(value)) + value


def _uint(tag: int, v: int) -> bytes:
    # unsigned types are encoded as non-negative INTEGERs: a leading 0 byte when the top bit is set
    return tlv(tag, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def integer(v: int) -> bytes:
    return tlv(INTEGER, v.to_bytes((v + (v < 0)).bit_length() // 8 + 1, "big", signed=True))


def counter32(v: int) -> bytes:
    return _uint(COUNTER32, v & 0xFFFFFFFF)


def gauge32(v: int) -> bytes:
    return _uint(GAUGE32, max(0, min(v, 0xFFFFFFFF)))


def timeticks(v: int) -> bytes:
    return _uint(TIMETICKS, v & 0xFFFFFFFF)


def counter64(v: int) -> bytes:
    return _uint(COUNTER64, v & 0xFFFFFFFFFFFFFFFF)


def octets(v: bytes | str) -> bytes:
    return tlv(OCTET_STRING, v.encode() if isinstance(v, str) else v)


@lru_cache(maxsize=65536)
def oid(parts: tuple[int, ...]) -> bytes:
    """An OID's TLV (cached: the simulator's OIDs repeat in every answer)."""
    body = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return tlv(OID, bytes(body))


def oid_value(dotted: str) -> bytes:
    return oid(tuple(int(x) for x in dotted.strip(".").split(".")))


NO_SUCH_OBJECT_V = tlv(NO_SUCH_OBJECT, b"")
NO_SUCH_INSTANCE_V = tlv(NO_SUCH_INSTANCE, b"")
END_OF_MIB_VIEW_V = tlv(END_OF_MIB_VIEW, b"")


def varbind(name: tuple[int, ...], value: bytes) -> bytes:
    return tlv(SEQUENCE, oid(name) + value)


def response(req: Request, varbinds: list[bytes], error_status: int = 0, error_index: int = 0) -> bytes:
    pdu = tlv(RESPONSE, integer(req.request_id) + integer(error_status) + integer(error_index)
              + tlv(SEQUENCE, b"".join(varbinds)))
    return tlv(SEQUENCE, integer(req.version) + octets(req.community) + pdu)
