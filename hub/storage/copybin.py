"""PostgreSQL binary COPY rows built directly, without a Python object per value.

asyncpg's ``copy_records_to_table`` wants a ``datetime`` per row; building one per sample costs more than
the database spends storing it. Here each ``points`` row is (time in µs since 2000-01-01, series id, float8)
in the binary COPY format, one ``struct.pack`` each, or for a whole run of numbers sharing a timestamp
C loops over the run (:func:`point_run`); the buffer goes to ``copy_to_table``.
"""

from __future__ import annotations

import struct
import sys
from array import array

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in µs since the Unix epoch

# field count 3 | len 8, int8 time | len 4, int4 series | len 8, float8 value
_POINT = struct.Struct(">hiqiiid")
_STATE_HEAD = struct.Struct(">hiqiii")  # then the utf-8 text


def ns_to_pg_us(ts_ns: int) -> int:
    return ts_ns // 1000 - PG_EPOCH_US


class PointRows:
    """Accumulates ``points`` rows in binary COPY format."""

    __slots__ = ("parts", "count")

    def __init__(self) -> None:
        self.parts: list[bytes] = [HEADER]
        self.count = 0

    def add(self, pg_us: int, series_id: int, value: float) -> None:
        self.parts.append(_POINT.pack(3, 8, pg_us, 4, series_id, 8, value))
        self.count += 1

    def payload(self) -> bytes:
        return b"".join(self.parts) + TRAILER


class StateRows:
    """Accumulates ``states`` rows (text values) in binary COPY format."""

    __slots__ = ("parts", "count")

    def __init__(self) -> None:
        self.parts: list[bytes] = [HEADER]
        self.count = 0

    def add(self, pg_us: int, series_id: int, value: str) -> None:
        data = value.encode()
        self.parts.append(_STATE_HEAD.pack(3, 8, pg_us, 4, series_id, len(data)) + data)
        self.count += 1

    def payload(self) -> bytes:
        return b"".join(self.parts) + TRAILER


POINT_PACK = _POINT.pack  # for the hot loop in ingest
_SWAP = sys.byteorder == "little"  # COPY's binary format is big-endian


def point_run(pg_us: int, series_ids: list[int | None], values: list) -> bytes:  # type: ignore[type-arg]
    """The ``points`` rows of one run (values sharing a timestamp), without a ``pack`` per value: the run's
    row repeated, then the ids and the values written into it by C loops (strided slice assignments).
    Raises TypeError when an id is None or a value is not a number (str, None), OverflowError when a
    value does not fit a float8 or an id an int4: the caller then builds the run sample by sample."""
    ids = array("i", series_ids)
    vals = array("d", values)  # (a bool is 1.0 / 0.0, as pack gives)
    n = len(vals)
    if len(ids) != n:
        raise TypeError("ids and values differ in length")
    if _SWAP:
        ids.byteswap()
        vals.byteswap()
    out = bytearray(_POINT.pack(3, 8, pg_us, 4, 0, 8, 0.0) * n)
    ib, vb = ids.tobytes(), vals.tobytes()
    for k in range(4):  # series id at byte 18 of each 34-byte row
        out[18 + k::34] = ib[k::4]
    for k in range(8):  # value at byte 26
        out[26 + k::34] = vb[k::8]
    return bytes(out)
