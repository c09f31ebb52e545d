"""Binary COPY data built in Python: the format's signature and trailer,
every line's own fields formatted once into one buffer (while PostgreSQL
decides, as the client is idle then), and a COPY fed rows already
encoded. Apart from the split path that uses it because it is a format
(PostgreSQL's, documented) rather than a step.

Rows are formatted by psycopg's public COPY API: an ``AsyncCopy`` that
writes to memory (``AsyncWriter``) instead of a server, so each field is
dumped in C as a COPY to the table would dump it. Where each row ends is
counted here (the format is PostgreSQL's: a field count, then each field's
length and bytes), and checked against what psycopg wrote.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Iterable, Sequence
from typing import Any, Final

from psycopg import AsyncCopy
from psycopg.abc import Buffer
from psycopg.copy import AsyncWriter
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.reconciliation.lines import OWN_TYPES, LineLike, own_row

# The binary COPY format (PostgreSQL documentation, COPY, "Binary Format").
COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # flags 0, no header extension
COPY_TRAILER: Final = b"\xff\xff"
COPY_CHUNK_BYTES: Final = 1 << 20
COPY_NULL: Final = b"\xff\xff\xff\xff"  # a field's length -1
# A line's fields (OWN_TYPES) without their text: ten lengths (4 bytes
# each), timestamptz and int8 (8 each), int4 (4).
_OWN_FIELDS_FIXED_BYTES: Final = 10 * 4 + 8 + 8 + 4


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


class _Memory(AsyncWriter):
    """Where an offline ``AsyncCopy`` writes: one growing buffer."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: Buffer) -> None:
        self.data += data


def _offline_copy(driver: Any, types: Sequence[str], memory: _Memory) -> AsyncCopy:
    """A binary COPY of ``types`` rows that runs no statement: rows go to
    ``memory``, dumped with the connection's adapters and encoding."""
    assert driver.info.encoding == "utf-8", driver.info.encoding  # row sizes count UTF-8
    copy = AsyncCopy(driver.cursor(), binary=True, writer=memory)
    if types:
        copy.set_types(list(types))
    return copy


async def binary_fields(driver: Any, types: Sequence[str], values: Sequence[Any]) -> bytes:
    """``values`` as binary COPY fields (a row's data after its field count)."""
    memory = _Memory()
    async with _offline_copy(driver, types, memory) as copy:
        await copy.write_row(values)
    data = memory.data
    assert data.startswith(COPY_SIGNATURE), data[: len(COPY_SIGNATURE)]
    assert data.endswith(COPY_TRAILER), data[-len(COPY_TRAILER) :]
    return bytes(data[len(COPY_SIGNATURE) + 2 : -len(COPY_TRAILER)])


# Lines formatted per slice while the decision runs (then the event loop
# answers).
BUILD_SLICE_LINES: Final = 5_000
# Lines formatted by one ``write_row``: their fields one after another, as
# one long row (a call per line cost a quarter more; a row's field count is
# an int16, so at most 3,276 lines of ten fields).
_LINES_PER_ROW: Final = 1_000
assert _LINES_PER_ROW * len(OWN_TYPES) <= 0x7FFF
assert BUILD_SLICE_LINES % _LINES_PER_ROW == 0


class OwnFields:
    """Every line's own fields as binary COPY data (``OWN_TYPES``), all in
    one buffer: line ``pos`` is ``data[starts[pos] : ends[pos]]``, its ten
    fields (lengths and bytes) with no field count. One buffer costs half as
    much as a ``bytes`` object per line."""

    def __init__(self, data: bytearray, starts: array[int], ends: array[int]) -> None:
        self._view = memoryview(data)  # the buffer cannot grow from now on
        self._starts, self._ends = starts, ends

    def __getitem__(self, pos: int) -> memoryview:
        return self._view[self._starts[pos] : self._ends[pos]]


async def format_own_fields(driver: Any, lines: Sequence[LineLike]) -> OwnFields:
    """Every line's own fields, formatted while PostgreSQL decides (the
    client is idle meanwhile), a slice at a time."""
    memory = _Memory()
    starts, ends = array("q"), array("q")
    end = len(COPY_SIGNATURE)
    typed = 0
    async with _offline_copy(driver, (), memory) as copy:
        for first in range(0, len(lines), _LINES_PER_ROW):
            some = lines[first : first + _LINES_PER_ROW]
            if len(some) != typed:  # every row but the last has as many
                copy.set_types(list(OWN_TYPES) * len(some))
                typed = len(some)
            fields: list[Any] = []
            end += 2  # the row's field count
            for line in some:
                values, text_bytes = own_row(line)
                fields.extend(values)
                starts.append(end)
                end += _OWN_FIELDS_FIXED_BYTES + text_bytes
                ends.append(end)
            await copy.write_row(fields)
            if (first + _LINES_PER_ROW) % BUILD_SLICE_LINES == 0:
                await asyncio.sleep(0)
    # Rows counted wrong would hand out other lines' bytes: never go on.
    assert len(memory.data) == end + len(COPY_TRAILER), (len(memory.data), end)
    return OwnFields(memory.data, starts, ends)
