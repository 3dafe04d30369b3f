"""PostgreSQL binary COPY rows built directly, without a Python object per value.

asyncpg's ``copy_records_to_table`` wants a ``datetime`` per row; building one per sample costs more than
the database spends storing it. Here each ``points`` row is one ``struct.pack`` of (time in µs since
2000-01-01, series id, float8) into the binary COPY format, and the buffer goes to ``copy_to_table``.
"""

from __future__ import annotations

import struct

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
