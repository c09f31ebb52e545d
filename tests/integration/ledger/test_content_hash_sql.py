"""The suspense batch computes each entry's content hash in SQL (a million
lines are booked set-based); ``EntryRequest.content_hash`` computes it in
Python. They must agree, or the entry a dispute or a person posts later
with the same key would be refused as a different one. Checked here for any
bank id, bank reference and amount: the expression alone, then an entry
posted by the batch and posted again from Python."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.formats import BANK_ID_RE, BANK_REF_RE
from domain.keys import SUSPENSE_ACCOUNT, suspense_key
from domain.money import AMOUNT_VND_MAX
from ledger.core.errors import IdempotencyConflictError
from ledger.core.postings import (
    EntryRequest,
    Posting,
    bank_clearing_account,
    ensure_bank_accounts,
    post_entry,
)
from ledger.reconciliation.suspense import post_suspense_batch, suspense_entry_hash_sql
from tests.support.recon import open_run

BANKS = st.from_regex(BANK_ID_RE, fullmatch=True)
REFS = st.from_regex(BANK_REF_RE, fullmatch=True)
AMOUNTS = st.integers(1, AMOUNT_VND_MAX)
SIGNED = AMOUNTS | AMOUNTS.map(lambda amount: -amount)
DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
# Each example runs in the test's one database (the engine fixture).
SHARED_DATABASE = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def suspense_request(bank: str, bank_ref: str, clearing_vnd: int) -> EntryRequest:
    """The suspense entry of a statement line, as Python builds it: the bank
    clearing account moves by the line's amount, suspense the other way."""
    return EntryRequest(
        idempotency_key=suspense_key(bank, bank_ref),
        kind="suspense",
        postings=(
            Posting(bank_clearing_account(bank), clearing_vnd),
            Posting(SUSPENSE_ACCOUNT, -clearing_vnd),
        ),
    )


@asynccontextmanager
async def rolled_back(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that leaves nothing behind (one per example)."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


@settings(max_examples=150, deadline=None, suppress_health_check=SHARED_DATABASE)
@given(bank=BANKS, clearing_vnd=SIGNED)
# psycopg binds -32768 as a smallint, whose negation overflowed in SQL.
@example(bank="sgbank", clearing_vnd=-32768)
async def test_postgresql_computes_the_python_content_hash(
    engine: AsyncEngine, bank: str, clearing_vnd: int
) -> None:
    # Through SQLAlchemy's text(), as the batch runs it (its colon escape too).
    sql = text(f"SELECT {suspense_entry_hash_sql(':clearing', ':clearing_vnd')}")
    async with engine.connect() as conn:
        computed = (
            await conn.execute(
                sql, {"clearing": bank_clearing_account(bank), "clearing_vnd": clearing_vnd}
            )
        ).scalar_one()
    assert computed == suspense_request(bank, "any", clearing_vnd).content_hash()


async def _line_in_suspense(
    conn: AsyncConnection, bank: str, bank_ref: str, amount_vnd: int, direction: str
) -> None:
    await ensure_bank_accounts(conn, [bank])
    run, statement_import = await open_run(conn, [], bank=bank, day=DAY, now=NOW)
    await conn.execute(
        text(
            "INSERT INTO statement_lines (import_id, reconciliation_id, bank, bank_ref,"
            " statement_date, booked_at, amount_vnd, direction, class, decided_at, in_suspense)"
            " VALUES (:import_id, :rid, :bank, :ref, :day, :now, :amount, :direction,"
            " 'unknown', :now, true)"
        ),
        {
            "import_id": statement_import.id,
            "rid": run.id,
            "bank": bank,
            "ref": bank_ref,
            "day": DAY,
            "now": NOW,
            "amount": amount_vnd,
            "direction": direction,
        },
    )


@settings(max_examples=40, deadline=None, suppress_health_check=SHARED_DATABASE)
@given(bank=BANKS, bank_ref=REFS, amount_vnd=AMOUNTS, credit=st.booleans())
async def test_an_entry_the_batch_posted_is_the_same_entry_posted_from_python(
    engine: AsyncEngine, bank: str, bank_ref: str, amount_vnd: int, credit: bool
) -> None:
    clearing_vnd = amount_vnd if credit else -amount_vnd
    async with rolled_back(engine) as conn:
        await _line_in_suspense(conn, bank, bank_ref, amount_vnd, "credit" if credit else "debit")
        batch = await post_suspense_batch(conn, bank, limit=1)
        assert (batch.lines, batch.entries) == (1, 1)
        again = await post_entry(conn, suspense_request(bank, bank_ref, clearing_vnd))
        assert not again.created
        # The same key for the other direction is another entry: refused.
        with pytest.raises(IdempotencyConflictError):
            await post_entry(conn, suspense_request(bank, bank_ref, -clearing_vnd))
