"""Statement lines as the loader takes them: what it reads of a line, the
values it stores (with the content's match keys), the checks a statement
passes before anything is written, and the whole-line staging table of a
small statement, filled by binary COPY. Both paths of a load start from
here; what a line is made of is kept apart from what is done with it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.content import REFERENCE_PREFIX, content_key, first_payment_reference
from ledger.core.errors import ValidationError
from ledger.reconciliation.sql_template import EMPTY, fill, identifier
from ledger.reconciliation.tuning import (
    LINES_PER_STATEMENT_MAX,
    TEMP_BUFFERS,
    set_local,
)


class LineLike(Protocol):
    """What the loader reads of a statement line (``bank_adapters.types.
    StatementLine`` fits; the ledger does not import it)."""

    @property
    def bank_ref(self) -> str: ...
    @property
    def booked_at(self) -> datetime: ...
    @property
    def amount_vnd(self) -> int: ...
    @property
    def direction(self) -> str: ...  # "credit" (money in) | "debit"
    @property
    def counterparty(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def raw(self) -> str: ...
    @property
    def end_to_end_ref(self) -> str | None: ...
    @property
    def source_line(self) -> int: ...


def clean_text(value: str) -> str:
    """A text value PostgreSQL can hold (NUL it cannot, so it is replaced)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


# Binary COPY: psycopg packs a tuple per line in C, with no escaping or
# number formatting in Python (the text format cost twice as much per line).
STAGING_TYPES: Final = (
    "int4",  # pos
    "text",  # bank_ref
    "timestamptz",  # booked_at
    "int8",  # amount_vnd
    "bool",  # credit
    "text",  # counterparty
    "text",  # content
    "text",  # content_key
    "text",  # content_ref
    "text",  # end_to_end_ref
    "text",  # raw
    "int4",  # source_line
)


# A line's own fields in statement_lines, as ``own_row`` gives them (the
# split path writes them by COPY, formatted once: ``copy_binary``).
OWN_TYPES: Final = (
    "text", "timestamptz", "int8", "text", "text", "text", "text", "text", "text", "int4",
)  # fmt: skip


def own_row(line: LineLike) -> tuple[tuple[Any, ...], int]:
    """A line's own stored values (``OWN_TYPES``), with the content's match
    keys and no NUL; and how many bytes their text takes in UTF-8 (where a
    binary COPY row of them ends, without encoding it twice)."""
    bank_ref, counterparty, content, raw = line.bank_ref, line.counterparty, line.content, line.raw
    e2e = line.end_to_end_ref or None
    # One string for the usual line: one test for NUL (a call per field costs
    # more than the rest), and its length is the text's bytes when ASCII.
    texts = f"{bank_ref}{counterparty}{content}{raw}{e2e or ''}"
    if "\x00" in texts:
        cleaned = map(clean_text, (bank_ref, counterparty, content, raw))
        bank_ref, counterparty, content, raw = cleaned
        e2e = clean_text(e2e) if e2e else None
        texts = f"{bank_ref}{counterparty}{content}{raw}{e2e or ''}"
    key = content_key(content)
    ref = first_payment_reference(key) if REFERENCE_PREFIX in key else None
    size = len(texts) if texts.isascii() else len(texts.encode())
    values = (
        bank_ref, line.booked_at, line.amount_vnd, counterparty, content, key, ref, e2e, raw,
        line.source_line,
    )  # fmt: skip
    # The key and the reference are ASCII letters and digits.
    return values, size + len(key) + (len(ref) if ref is not None else 0)


def staging_row(pos: int, line: LineLike) -> tuple[Any, ...]:
    """One staging row (``STAGING_TYPES``), with the content's match keys."""
    v, _ = own_row(line)
    return (pos, *v[:3], line.direction == "credit", *v[3:])


# The whole lines of a small statement; the split path's helper makes the
# same table for its lines, with the payment their bank reference found.
STAGING_TEMPLATE: Final = """
CREATE TEMP TABLE {table} (
    pos             integer NOT NULL,
    bank_ref        text NOT NULL,
    booked_at       timestamptz NOT NULL,
    amount_vnd      bigint NOT NULL,
    credit          boolean NOT NULL,
    counterparty    text NOT NULL,
    content         text NOT NULL,
    content_key     text NOT NULL,
    content_ref     text,
    end_to_end_ref  text,
    raw             text NOT NULL,
    source_line     integer NOT NULL{more_columns}
) ON COMMIT DROP
"""
_STAGING_DDL: Final = fill(STAGING_TEMPLATE, table=identifier("recon_staging"), more_columns=EMPTY)
STAGING_COLUMNS: Final = (
    "pos, bank_ref, booked_at, amount_vnd, credit, counterparty, content, content_key,"
    " content_ref, end_to_end_ref, raw, source_line"
)
_COPY_SQL: Final = f"COPY recon_staging ({STAGING_COLUMNS}) FROM STDIN (FORMAT binary)"


async def copy_into_staging(
    conn: AsyncConnection, lines: Sequence[LineLike], lines_max: int = LINES_PER_STATEMENT_MAX
) -> int:
    """COPY the lines into the session's staging table; returns their count."""
    check_lines(lines, lines_max)
    # Temporary tables live in the session's own buffers (8 MB unless set
    # before the session's first temporary table): a big statement would
    # spill them to disk at every step.
    await set_local(conn, "temp_buffers", TEMP_BUFFERS)
    await conn.execute(text(_STAGING_DDL))
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # psycopg.AsyncConnection, same transaction
    async with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
        copy.set_types(STAGING_TYPES)
        for pos, line in enumerate(lines):
            # Sends only when psycopg's buffer fills, so PostgreSQL reads
            # the rows while the next ones are packed.
            await copy.write_row(staging_row(pos, line))
    await conn.execute(text("ANALYZE recon_staging"))
    return len(lines)


def check_lines(lines: Sequence[LineLike], lines_max: int = LINES_PER_STATEMENT_MAX) -> None:
    """Refuse a statement longer than ``lines_max``, or with a bank
    reference twice (parsers refuse such files; a second booking under one
    reference would be lost, so never load one silently)."""
    if len(lines) > lines_max:
        raise ValidationError("statement", f"more than {lines_max} lines")
    seen: set[str] = set()
    for line in lines:
        if line.bank_ref in seen:
            raise ValidationError("statement", f"bank reference {line.bank_ref!r} appears twice")
        seen.add(line.bank_ref)


def lines_sha256(lines: Iterable[LineLike]) -> str:
    """A digest of a statement's content for a fetched statement (the file
    itself is not kept): the same lines give the same digest."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(
            json.dumps(
                [
                    line.bank_ref,
                    line.booked_at.isoformat(),
                    line.amount_vnd,
                    str(line.direction),
                    line.counterparty,
                    line.content,
                    line.end_to_end_ref,
                ],
                ensure_ascii=False,
            ).encode()
        )
        digest.update(b"\n")
    return digest.hexdigest()
