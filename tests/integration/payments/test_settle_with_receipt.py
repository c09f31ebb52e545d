"""Settlement and receipt in one transaction (``settle_with_receipt``, the
saga's step since the ``settle-with-receipt`` patch), on the real embedded
PostgreSQL: exactly one receipt per settling debit (invariant 1 of docs/invariants.md),
idempotent, with its history rows and audit entry."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import payments as pay
from ledger.core.audit import verify_audit_chain
from ledger.core.errors import NotFoundError
from ledger.core.postings import balances, posting_sums
from ledger.fines import Fine
from ledger.receipts.issue import issue_receipt_once, verify_receipts
from ledger.receipts.signing import ReceiptSigner, verify_signature
from tests.support import db
from tests.support.ledger import ensure_bank_accounts, make_fine

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
SIGNER = ReceiptSigner.generate()


async def _payment(engine: AsyncEngine, fine: Fine) -> pay.Payment:
    async with engine.begin() as conn:
        payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
    return payment


async def _settle(engine: AsyncEngine, payment: pay.Payment, ref: str) -> pay.Settlement:
    async with engine.begin() as conn:
        return await pay.settle_with_receipt(
            conn, payment.id, ref, NOW, "bank confirmed the debit", SIGNER
        )


async def _two_debits(engine: AsyncEngine, cause: str) -> tuple[pay.Payment, pay.Payment]:
    """A fine's payment in flight and a second debit of it the bank made."""
    await ensure_bank_accounts(engine, "sgbank")
    fine = await make_fine(engine)
    first = await _payment(engine, fine)
    async with engine.begin() as conn:
        second, _ = await pay.record_external_debit(
            conn, fine, "sgbank", "B-2", 800_000, "111", NOW, cause
        )
    return first, second


async def test_books_settles_and_receipts_once(engine: AsyncEngine) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    fine = await make_fine(engine)
    payment = await _payment(engine, fine)
    first = await _settle(engine, payment, "B-1")
    again = await _settle(engine, payment, "B-1")
    assert first.outcome is again.outcome is pay.SettleOutcome.SETTLED
    assert first.receipt_issued_now
    assert not again.receipt_issued_now
    assert first.receipt is not None
    assert again.receipt == first.receipt
    assert first.receipt.number == 1
    assert first.receipt.payload["bank_ref"] == "B-1"
    assert first.receipt.payload["amount_vnd"] == 800_000
    assert verify_signature(
        SIGNER.public_key_b64, first.receipt.payload_canonical, first.receipt.signature
    )
    async with engine.connect() as conn:
        view = await pay.payment_view(conn, payment.id)
        assert await balances(conn, ["fines-revenue"]) == {"fines-revenue": -800_000}
        assert await balances(conn) == await posting_sums(conn)
        report = await verify_receipts(conn, SIGNER.verifier())
        chain = await verify_audit_chain(conn)
    assert view.payment.status == "succeeded"
    assert view.payment.settles_fine
    assert view.payment.bank_ref == "B-1"
    assert view.payment.debited_at == NOW
    assert [(e.from_status, e.to_status) for e in view.history] == [
        (None, "initiated"),
        ("initiated", "succeeded"),
    ]
    assert view.history[-1].detail == {"bank_ref": "B-1"}
    assert view.receipt is not None
    assert view.receipt.number == first.receipt.number
    assert report.all_ok
    assert chain.ok
    pid = str(payment.id)
    assert (
        await db.value(engine, "SELECT count(*) FROM receipts WHERE payment_id = :p", p=payment.id)
        == 1
    )
    assert (
        await db.value(
            engine,
            "SELECT count(*) FROM audit_log WHERE subject_id = :p AND action = 'payment.settled'",
            p=pid,
        )
        == 1
    )
    assert (
        await db.value(
            engine,
            "SELECT count(*) FROM journal_entries WHERE idempotency_key = :k",
            k=f"pay:{pid}",
        )
        == 1
    )


async def test_a_second_debit_of_the_fine_gets_no_receipt(engine: AsyncEngine) -> None:
    first, second = await _two_debits(engine, "bank booked twice")
    assert (await _settle(engine, first, "B-1")).outcome is pay.SettleOutcome.SETTLED
    duplicate = await _settle(engine, second, "B-2")
    assert duplicate.outcome is pay.SettleOutcome.DUPLICATE
    assert duplicate.receipt is None
    assert (await _settle(engine, second, "B-2")).outcome is pay.SettleOutcome.DUPLICATE
    async with engine.connect() as conn:
        assert await balances(conn, ["refunds-payable"]) == {"refunds-payable": -800_000}
    assert await db.value(engine, "SELECT count(*) FROM receipts") == 1
    assert (
        await db.value(
            engine,
            "SELECT count(*) FROM audit_log WHERE action = 'payment.duplicate' AND subject_id = :p",
            p=str(second.id),
        )
        == 1
    )


async def test_concurrent_debits_of_one_fine_make_one_receipt(engine: AsyncEngine) -> None:
    first, second = await _two_debits(engine, "statement line")
    done = await asyncio.gather(_settle(engine, first, "B-1"), _settle(engine, second, "B-2"))
    assert sorted(d.outcome.value for d in done) == ["duplicate", "settled"]
    assert [d.receipt is not None for d in done].count(True) == 1
    assert await db.value(engine, "SELECT count(*) FROM receipts") == 1


async def test_a_payment_settled_by_the_two_step_path_gets_its_receipt(
    engine: AsyncEngine,
) -> None:
    """Runs recorded before the patch settle first and receipt next; the
    merged step picks up after either of them."""
    await ensure_bank_accounts(engine, "sgbank")
    settled_only = await _payment(engine, await make_fine(engine, "00001/QĐ-XPHC"))
    receipted = await _payment(engine, await make_fine(engine, "00002/QĐ-XPHC"))
    async with engine.begin() as conn:
        for ref, payment in (("B-1", settled_only), ("B-2", receipted)):
            await pay.settle_payment(conn, payment.id, ref, NOW, "bank confirmed")
        existing, _ = await issue_receipt_once(conn, receipted.id, SIGNER, NOW)
    picked_up = await _settle(engine, settled_only, "B-1")
    assert picked_up.receipt_issued_now
    assert picked_up.receipt is not None
    assert picked_up.receipt.payload["bank_ref"] == "B-1"
    kept = await _settle(engine, receipted, "B-2")
    assert not kept.receipt_issued_now
    assert kept.receipt == existing
    assert await db.value(engine, "SELECT count(*) FROM receipts") == 2
    assert (
        await db.value(engine, "SELECT count(*) FROM audit_log WHERE action = 'payment.settled'")
        == 2
    )


async def test_unit_spelled_otherwise_keeps_its_series(engine: AsyncEngine) -> None:
    """The series row of a unit spelled with other spacing or case is found
    by the slow path; numbering stays gapless in the one series."""
    await ensure_bank_accounts(engine, "sgbank")
    plain = await make_fine(engine, "00001/QĐ-XPHC", issuing_unit="Phòng CSGT Hà Nội")
    spaced = await make_fine(engine, "00002/QĐ-XPHC", issuing_unit="Phòng  CSGT  Hà Nội")
    first = await _settle(engine, await _payment(engine, plain), "B-1")
    second = await _settle(engine, await _payment(engine, spaced), "B-2")
    assert first.receipt is not None
    assert second.receipt is not None
    assert second.receipt.series == first.receipt.series
    assert (first.receipt.number, second.receipt.number) == (1, 2)


async def test_note_event_records_the_current_status(engine: AsyncEngine) -> None:
    fine = await make_fine(engine)
    payment = await _payment(engine, fine)
    async with engine.connect() as conn:
        await pay.note_event(conn, payment.id, "debit resent", NOW, {"outcome": "link_down"})
        await conn.commit()
        view = await pay.payment_view(conn, payment.id)
        with pytest.raises(NotFoundError):
            await pay.note_event(conn, uuid.uuid4(), "no such payment", NOW)
    assert [(e.from_status, e.to_status, e.cause) for e in view.history][-1] == (
        "initiated",
        "initiated",
        "debit resent",
    )
    assert view.history[-1].detail == {"outcome": "link_down"}
