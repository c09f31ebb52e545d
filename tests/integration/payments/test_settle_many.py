"""The link recovery's batch booking (``PaymentActivities.settle_many``) on the
real embedded PostgreSQL: many confirmed debits booked and receipted in one
transaction, each exactly once; a payment no longer in doubt, or one another
transaction holds, is left out (not booked, not waited for); a second run
books nothing again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.outcomes import SettleOutcome
from ledger import payments as pay
from ledger.core.audit import verify_audit_chain
from ledger.receipts.issue import verify_receipts
from ledger.receipts.signing import ReceiptSigner
from tests.support import db
from tests.support.ledger import ensure_bank_accounts, make_fine
from workflows.payment.activities import PaymentActivities, PaymentDeps

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
SIGNER = ReceiptSigner.generate()
CAUSE = "bank confirmed the debit when its link came back"
# Generous: the batch must not wait for the held row at all; a wait would
# last until the holder lets go (never, here), so this only bounds a failure.
HELD_ROW_WAIT_SECONDS_MAX = 30


async def _verifying(engine: AsyncEngine, count: int) -> list[pay.Payment]:
    await ensure_bank_accounts(engine, "sgbank")
    made = []
    for i in range(count):
        fine = await make_fine(engine, f"91{i:03d}/QĐ-XPHC", 700_000 + i)
        async with engine.begin() as conn:
            payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
            await pay.transition(conn, payment.id, "verifying", "answer garbled", NOW)
        made.append(payment)
    return made


async def _receipts(engine: AsyncEngine, ids: list[UUID]) -> dict[UUID, int]:
    rows = await db.rows(
        engine,
        "SELECT payment_id, count(*) AS n FROM receipts WHERE payment_id = ANY(:ids)"
        " GROUP BY payment_id",
        ids=ids,
    )
    return {r.payment_id: int(r.n) for r in rows}


async def test_books_the_batch_once_and_leaves_out_what_it_cannot_book(
    engine: AsyncEngine,
) -> None:
    activities = PaymentActivities(PaymentDeps(engine, {}, SIGNER, "http://127.0.0.1:8080"))
    free_a, free_b, declined, held = await _verifying(engine, 4)
    async with engine.begin() as conn:
        await pay.transition(conn, declined.id, "declined", "bank declined", NOW)
    batch = [(p.id, f"B-{n}") for n, p in enumerate((free_a, declined, held, free_b))]

    async with engine.connect() as holder:
        # Another writer (the payment's own workflow, say) holds this row.
        await holder.execute(
            text("SELECT id FROM payments WHERE id = :id FOR UPDATE"), {"id": held.id}
        )
        done = await asyncio.wait_for(
            activities.settle_many(batch, CAUSE), HELD_ROW_WAIT_SECONDS_MAX
        )
        await holder.rollback()

    assert set(done) == {free_a.id, free_b.id}
    assert {d.outcome for d in done.values()} == {SettleOutcome.SETTLED}
    assert all(d.receipt_series and d.receipt_number for d in done.values())
    ids = [p.id for p in (free_a, free_b, declined, held)]
    assert await _receipts(engine, ids) == {free_a.id: 1, free_b.id: 1}
    statuses = await db.rows(
        engine, "SELECT id, status FROM payments WHERE id = ANY(:ids)", ids=ids
    )
    assert {r.id: r.status for r in statuses} == {
        free_a.id: "succeeded",
        free_b.id: "succeeded",
        declined.id: "declined",
        held.id: "verifying",
    }

    # Again (a retried activity): nothing is in doubt but the held one,
    # which is now free and booked; no second receipt for anyone.
    again = await activities.settle_many(batch, CAUSE)
    assert set(again) == {held.id}
    assert await _receipts(engine, ids) == {free_a.id: 1, free_b.id: 1, held.id: 1}
    async with engine.connect() as conn:
        assert (await verify_receipts(conn, SIGNER.verifier())).all_ok
        assert (await verify_audit_chain(conn)).ok
