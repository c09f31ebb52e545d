"""Builders for reconciliation tests: ledgers in a given state, statement
lines, one call to load and match, and snapshots of everything a run may
write (to show that a second run writes nothing)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bank_adapters.text import bank_transfer_content, payment_reference, qr_transfer_content
from bank_adapters.types import Direction, StatementLine
from ledger import payments as pay
from ledger.core.postings import ensure_bank_accounts
from ledger.fines import Fine
from ledger.reconciliation import load as recon
from ledger.reconciliation import runs
from ledger.reconciliation.lines import lines_sha256
from ledger.reconciliation.payment_checks import MatchPolicy
from ledger.reconciliation.suspense import post_suspense_batch
from ledger.reconciliation.tuning import DEFAULT_TUNING, LoadTuning

BANK = "hnbank"
# 10:00 in Vietnam on the statement date.
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 23)
PAYER = "123456789"
_refs = itertools.count(1)


def bank_ref() -> str:
    return f"FT{next(_refs):012d}"


def line(
    amount_vnd: int,
    content: str = "",
    *,
    ref: str | None = None,
    direction: Direction = Direction.CREDIT,
    end_to_end_ref: str | None = None,
    counterparty: str = PAYER,
    booked_at: datetime = NOW - timedelta(minutes=5),
) -> StatementLine:
    return StatementLine(
        bank_ref=ref or bank_ref(),
        booked_at=booked_at,
        amount_vnd=amount_vnd,
        direction=direction,
        counterparty=counterparty,
        content=content,
        raw=f"raw {content}",
        end_to_end_ref=end_to_end_ref,
    )


def qr_content(payment: pay.Payment, length_max: int = 50) -> str:
    """The content of our VietQR transfer for ``payment`` as the bank keeps it."""
    content = qr_transfer_content(payment_reference(payment.debit_key), payment.decision_number)
    return bank_transfer_content(content, length_max)


async def new_payment(
    engine: AsyncEngine,
    fine: Fine,
    status: str = "initiated",
    *,
    bank: str = BANK,
    bank_ref_value: str | None = None,
    now: datetime = NOW,
) -> pay.Payment:
    """A payment of ``fine`` in ``status`` (succeeded ones get ``bank_ref``)."""
    async with engine.begin() as conn:
        await ensure_bank_accounts(conn, [bank])
        payment, _ = await pay.create_payment(conn, fine, bank, PAYER, now)
        if status in ("verifying", "declined"):
            await pay.transition(conn, payment.id, status, "test", now)
        elif status in ("succeeded", "refunded"):
            await pay.settle_payment(conn, payment.id, bank_ref_value or bank_ref(), now, "test")
            if status == "refunded":
                await pay.mark_refunded(conn, payment.id, bank_ref(), now)
        return await pay.get_payment(conn, payment.id)


async def open_run(
    conn: AsyncConnection,
    lines: list[StatementLine],
    *,
    bank: str = BANK,
    day: date = DAY,
    now: datetime = NOW,
    sha: str | None = None,
) -> tuple[runs.Run, runs.StatementImport]:
    """A run and its statement import, as the activity opens them before the
    load (in ``conn``'s transaction)."""
    await ensure_bank_accounts(conn, [bank])
    run, _ = await runs.create_run(
        conn,
        bank=bank,
        statement_date=day,
        source="fetch",
        trigger="cli",
        requested_by="test",
        now=now,
    )
    statement_import, _ = await runs.register_import(
        conn,
        bank=bank,
        statement_date=day,
        source="fetch",
        fmt="csv",
        content_sha256=sha or lines_sha256(lines),
        lines=len(lines),
        now=now,
    )
    return run, statement_import


async def run_and_import(
    engine: AsyncEngine, lines: list[StatementLine]
) -> tuple[runs.Run, runs.StatementImport]:
    """``open_run`` committed, as the activity does before the load (so a
    helper connection sees the run)."""
    async with engine.begin() as conn:
        return await open_run(conn, lines)


async def reconcile(
    engine: AsyncEngine,
    lines: list[StatementLine],
    *,
    bank: str = BANK,
    day: date = DAY,
    now: datetime = NOW,
    policy: MatchPolicy | None = None,
    sha: str | None = None,
    tuning: LoadTuning = DEFAULT_TUNING,
) -> tuple[runs.Run, recon.MatchSummary]:
    """Open a run and load ``lines`` in one transaction, then book the
    suspense entries (as the workflow does, after the load)."""
    async with engine.begin() as conn:
        run, statement_import = await open_run(conn, lines, bank=bank, day=day, now=now, sha=sha)
        summary = await recon.load_and_match(
            conn, run, statement_import, lines, now, policy or MatchPolicy(), tuning=tuning
        )
    await post_suspense(engine, bank)
    return run, summary


async def post_suspense(engine: AsyncEngine, bank: str = BANK) -> int:
    """Book every waiting suspense entry, in small transactions."""
    posted = 0
    while True:
        async with engine.begin() as conn:
            batch = await post_suspense_batch(conn, bank, limit=3)
        posted += batch.entries
        if batch.lines == 0:
            return posted


async def lines_by_ref(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM statement_lines ORDER BY id"))).all()
    return {r.bank_ref: r for r in rows}


async def discrepancies(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT * FROM discrepancies ORDER BY id"))).all())


SNAPSHOT_TABLES = (
    "statement_lines",
    "discrepancies",
    "journal_entries",
    "postings",
    "account_balance_shards",
    "payments",
    "payment_events",
    "receipts",
)


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table a reconciliation may touch."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in SNAPSHOT_TABLES:
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out
