"""Binary COPY data built in Python: the format's signature and trailer,
every line's own fields formatted once into one buffer (while PostgreSQL
decides, as the client is idle then), and a COPY fed rows already
encoded. Apart from the split path that uses it because it is a format
(PostgreSQL's, documented) rather than a step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Final

from psycopg import pq
from psycopg._copy_base import format_row_binary
from psycopg.abc import Transformer as TransformerLike
from psycopg.adapt import Transformer
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.reconciliation.lines import (
    OWN_TYPES,
    LineLike,
    own_values,
)

# The binary COPY format (PostgreSQL documentation, COPY, "Binary Format").
COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # flags 0, no header extension
COPY_TRAILER: Final = b"\xff\xff"
COPY_CHUNK_BYTES: Final = 1 << 20
COPY_NULL: Final = b"\xff\xff\xff\xff"  # a field's length -1


async def copy_binary(conn: AsyncConnection, sql: str, rows: Iterable[bytes]) -> None:
    """COPY ``sql`` in binary format from rows already encoded (field count,
    then each field's length and value), sent a chunk at a time."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.cursor() as cursor, cursor.copy(sql) as copy:
        buffer = bytearray(COPY_SIGNATURE)
        for row in rows:
            buffer += row
            if len(buffer) >= COPY_CHUNK_BYTES:
                await copy.write(buffer)
                buffer = bytearray()
        buffer += COPY_TRAILER
        await copy.write(buffer)


def dumper(driver: Any, types: Sequence[str]) -> TransformerLike:
    """A psycopg transformer dumping ``types`` in binary, as COPY's would."""
    tx = Transformer(driver)
    registry = driver.adapters.types
    tx.set_dumper_types([registry.get_oid(t) for t in types], pq.Format.BINARY)
    return tx


def binary_fields(tx: TransformerLike, values: Sequence[Any]) -> bytes:
    """``values`` as binary COPY fields (a row's data after its field count)."""
    out = bytearray()
    format_row_binary(values, tx, out)
    return bytes(out[2:])


# Lines formatted per slice while the decision runs (then the event loop
# answers).
BUILD_SLICE_LINES: Final = 5_000


class OwnFields:
    """Every line's own fields as binary COPY data (``OWN_TYPES``), all in
    one buffer: line ``pos`` is ``data[starts[pos] + 2 : starts[pos + 1]]``
    (each row as psycopg formats it, after its 2-byte field count). One
    buffer costs half as much as a ``bytes`` object per line."""

    def __init__(self, data: bytearray, starts: list[int]) -> None:
        self._view = memoryview(data)  # the buffer cannot grow from now on
        self._starts = starts

    def __getitem__(self, pos: int) -> memoryview:
        return self._view[self._starts[pos] + 2 : self._starts[pos + 1]]


async def format_own_fields(driver: Any, lines: Sequence[LineLike]) -> OwnFields:
    """Every line's own fields, formatted while PostgreSQL decides (the
    client is idle meanwhile), a slice at a time."""
    tx = dumper(driver, OWN_TYPES)
    data = bytearray()
    starts = [0]
    for start in range(0, len(lines), BUILD_SLICE_LINES):
        for pos in range(start, min(start + BUILD_SLICE_LINES, len(lines))):
            format_row_binary(own_values(lines[pos]), tx, data)
            starts.append(len(data))
        await asyncio.sleep(0)
    return OwnFields(data, starts)
