"""Disputes in the ledger on real PostgreSQL: the evidence from statement
lines, the state machine around approvals, the refund booking, and the
``reconciler audit verify`` command on a tampered log."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.keys import suspense_key
from ledger import disputes as ds
from ledger.core import approvals as ap
from ledger.core.postings import (
    EntryRequest,
    Posting,
    SystemAccount,
    balances,
    bank_clearing_account,
    post_entry,
    posting_sums,
)
from reconciler.cli.main import main
from tests.support.ledger import ensure_bank_accounts, make_fine

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def _complaint(**changes: object) -> ds.DisputeInput:
    values: dict[str, object] = {
        "decision_number": "01234/QĐ-XPHC",
        "bank": "sgbank",
        "amount_vnd": 800_000,
        "occurred_at": NOW - timedelta(hours=2),
        "description": "debited, no receipt",
        "bank_ref": "FT1",
        "payer_account": "123456789",
        **changes,
    }
    return ds.DisputeInput(**values)  # type: ignore[arg-type]


async def _statement_line(
    engine: AsyncEngine,
    bank_ref: str,
    amount_vnd: int,
    content: str,
    booked_at: datetime,
    counterparty: str = "",
) -> None:
    """A line of a statement fetched from the bank, loaded and classified as
    reconciliation leaves it."""
    day = booked_at.date()
    async with engine.begin() as conn:
        import_id = (
            await conn.execute(
                text(
                    "INSERT INTO statement_imports (bank, statement_date, source, format, "
                    "content_sha256) VALUES ('sgbank', :d, 'fetch', 'csv', :h) RETURNING id"
                ),
                {"d": day, "h": secrets.token_hex(32)},
            )
        ).scalar_one()
        run_id = (
            await conn.execute(
                text(
                    "INSERT INTO reconciliations (bank, statement_date, source, trigger) "
                    "VALUES ('sgbank', :d, 'fetch', 'api') RETURNING id"
                ),
                {"d": day},
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO statement_lines (import_id, reconciliation_id, bank, bank_ref, "
                "statement_date, booked_at, amount_vnd, direction, counterparty, content, "
                "content_key, class, decided_at) VALUES (:i, :run, 'sgbank', :r, :d, :t, :a, "
                "'credit', :p, :c, upper(regexp_replace(:c, '[^0-9A-Za-z]+', '', 'g')), "
                "'unknown', now())"
            ),
            {
                "p": counterparty,
                "i": import_id,
                "run": run_id,
                "r": bank_ref,
                "d": day,
                "t": booked_at,
                "a": amount_vnd,
                "c": content,
            },
        )


async def _held_in_suspense(engine: AsyncEngine, bank_ref: str, amount_vnd: int) -> None:
    """A debit of sgbank's that reconciliation put in suspense, as it does."""
    await ensure_bank_accounts(engine, "sgbank")
    async with engine.begin() as conn:
        await post_entry(
            conn,
            EntryRequest(
                idempotency_key=suspense_key("sgbank", bank_ref),
                kind="suspense",
                postings=(
                    Posting(bank_clearing_account("sgbank"), amount_vnd),
                    Posting(SystemAccount.SUSPENSE, -amount_vnd),
                ),
            ),
        )


async def test_evidence_finds_statement_lines(engine: AsyncEngine) -> None:
    await make_fine(engine)
    async with engine.begin() as conn:
        dispute = await ds.open_dispute(conn, _complaint(), "fin", NOW)
    when = NOW - timedelta(hours=1)
    await _statement_line(engine, "FT1", 800_000, "CHUYEN KHOAN", when)
    await _statement_line(engine, "FT2", 800_000, "NOP PHAT 01234/QD-XPHC", when)
    await _statement_line(engine, "FT3", 800_000, "NOP PHAT 99999/QD-XPHC", when)
    await _statement_line(engine, "FT4", 800_000, "NOP PHAT 01234/QD-XPHC", NOW - timedelta(days=9))
    async with engine.connect() as conn:
        evidence = await ds.ledger_evidence(conn, dispute)
    found = {(line.bank_ref, line.matched_by) for line in evidence.statement_lines}
    assert found == {("FT1", "bank_ref"), ("FT2", "decision_and_amount")}
    assert evidence.fine_status == "unpaid"
    assert evidence.payments == ()
    assert evidence.debit_payment is None


async def test_state_machine_around_approvals(engine: AsyncEngine) -> None:
    await make_fine(engine)
    async with engine.begin() as conn:
        dispute = await ds.open_dispute(conn, _complaint(), "fin", NOW)
        _, approval = await ds.request_resolution(conn, dispute.id, "confirm", "seen", "fin", NOW)
    with pytest.raises(ds.DisputeStateError):
        async with engine.begin() as conn:
            await ds.reject_dispute(conn, dispute.id, "no", "fin", NOW)
    with pytest.raises(ds.DisputeStateError):
        async with engine.begin() as conn:
            await ds.request_resolution(conn, dispute.id, "refund", "other", "fin", NOW)
    async with engine.begin() as conn:
        await ds.expire_approval(conn, dispute.id, approval.id, NOW + timedelta(days=3))
        reopened = await ds.get_dispute(conn, dispute.id)
    assert reopened.status == "open"
    async with engine.begin() as conn:
        _, second = await ds.request_resolution(conn, dispute.id, "refund", "wrong", "fin", NOW)
        await ds.decide_approval(conn, second.id, True, "boss", None, NOW)
        executing = await ds.get_dispute(conn, dispute.id)
    assert (executing.status, executing.approval_id) == ("executing", second.id)
    async with engine.begin() as conn:
        failed = await ds.fail(conn, dispute.id, second.id, "bank declined", NOW, "system:x")
        assert (await ap.get_approval(conn, second.id)).status == "failed"
    assert failed.status == "open"


async def test_refund_of_an_unbooked_debit_balances(engine: AsyncEngine) -> None:
    await make_fine(engine)
    await ensure_bank_accounts(engine, "sgbank")
    async with engine.begin() as conn:
        dispute = await ds.open_dispute(conn, _complaint(amount_vnd=500_000), "fin", NOW)
        for _ in range(2):  # idempotent
            await ds.book_unrecorded_refund(
                conn, dispute, "RF1", NOW, "system:x", amount_vnd=500_000
            )
        kinds = (await conn.execute(text("SELECT kind FROM journal_entries ORDER BY id"))).all()
        cached = await balances(conn)
        assert cached == await posting_sums(conn)
    assert [k.kind for k in kinds] == ["suspense", "refund"]
    assert cached["suspense"] == cached["bank:sgbank:clearing"] == 0


async def test_a_debit_on_the_banks_statement_is_refunded_as_the_bank_has_it(
    engine: AsyncEngine,
) -> None:
    """Reconciliation loaded the bank's line and put the debit in suspense: a
    typed amount that differs is refused naming both; the request names the
    bank's amount and payer, and the refund reuses the suspense entry."""
    await make_fine(engine)
    await _statement_line(engine, "FT1", 500_000, "CHUYEN KHOAN", NOW, counterparty="555666")
    await _held_in_suspense(engine, "FT1", 500_000)
    async with engine.begin() as conn:
        wrong = await ds.open_dispute(conn, _complaint(amount_vnd=400_000), "fin", NOW)
    with pytest.raises(ds.BankAmountDiffersError, match=r"400000 .*500000"):
        async with engine.begin() as conn:
            await ds.request_resolution(conn, wrong.id, "refund", "typed", "fin", NOW)
    async with engine.begin() as conn:
        await ds.reject_dispute(conn, wrong.id, "wrong amount", "fin", NOW)
        right = await ds.open_dispute(conn, _complaint(amount_vnd=500_000), "fin", NOW)
        _, approval = await ds.request_resolution(conn, right.id, "refund", "seen", "fin", NOW)
        # The bank's payer, not the complaint's typed 123456789.
        assert (approval.payload["amount_vnd"], approval.payload["payer_account"]) == (
            500_000,
            "555666",
        )
        await ds.book_unrecorded_refund(conn, right, "RF1", NOW, "system:x", amount_vnd=500_000)
        count = (await conn.execute(text("SELECT count(*) FROM journal_entries"))).scalar_one()
        cached = await balances(conn)
    assert count == 2
    assert cached["suspense"] == cached["bank:sgbank:clearing"] == 0


def test_cli_audit_verify_lists_the_broken_rows(
    db_url: str, owner_db_url: str, tmp_path: Path
) -> None:
    async def setup(tamper: bool) -> None:
        # Tampering needs the owner's rights (the app's role cannot disable triggers).
        engine = create_async_engine(owner_db_url if tamper else db_url)
        try:
            if tamper:
                async with engine.begin() as conn:
                    await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
                    await conn.execute(text("DELETE FROM audit_log WHERE id = 2"))
                    await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
                return
            await make_fine(engine)
            async with engine.begin() as conn:
                await ds.open_dispute(conn, _complaint(), "fin", NOW)
                await ds.open_dispute(conn, _complaint(bank_ref="FT2"), "fin", NOW)
                await ds.open_dispute(conn, _complaint(bank_ref="FT3"), "fin", NOW)
        finally:
            await engine.dispose()

    asyncio.run(setup(tamper=False))
    runner = CliRunner()
    env = {
        "RECONCILER_DATABASE_URL": db_url,
        "RECONCILER_LOG_LEVEL": "warning",
        "RECONCILER_ENV": "dev",
        "RECONCILER_DATA_DIR": str(tmp_path),
    }
    intact = runner.invoke(main, ["audit", "verify"], env=env)
    assert intact.exit_code == 0, intact.output
    assert "checked 3 audit rows" in intact.output
    assert "intact" in intact.output
    listed = runner.invoke(main, ["disputes", "list", "--status", "open"], env=env)
    assert listed.exit_code == 0
    assert len(listed.output.splitlines()) == 3
    asyncio.run(setup(tamper=True))
    broken = runner.invoke(main, ["audit", "verify", "--page-size", "1"], env=env)
    assert broken.exit_code == 1
    assert "BROKEN row 2 [missing]" in broken.output


async def test_a_confirmed_debit_leaves_suspense_once(engine: AsyncEngine) -> None:
    await make_fine(engine)
    await _held_in_suspense(engine, "FT1", 800_000)
    async with engine.begin() as conn:
        dispute = await ds.open_dispute(conn, _complaint(), "fin", NOW)
        assert await ds.release_suspense(conn, dispute, NOW, "system:x")
        assert not await ds.release_suspense(conn, dispute, NOW, "system:x")
        cached = await balances(conn)
    assert cached["suspense"] == cached["bank:sgbank:clearing"] == 0
