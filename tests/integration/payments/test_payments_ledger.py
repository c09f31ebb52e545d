"""Payments in the ledger: idempotent creation, the state machine, settlement,
duplicates and refunds, on the real embedded PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import payments as pay
from ledger.core.errors import (
    FineAlreadyPaidError,
    IdempotencyConflictError,
    InvalidTransitionError,
)
from ledger.core.postings import balances, posting_sums
from ledger.fines import fine_view
from tests.support.ledger import ensure_bank_accounts, make_fine

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def _key(key: str, body: str = "a") -> pay.ClientKey:
    return pay.ClientKey("portal", key, pay.request_hash({"b": body}))


async def test_same_key_same_body_returns_the_same_payment(engine: AsyncEngine) -> None:
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        first, created = await pay.create_payment(
            conn, fine, "sgbank", "111", NOW, client=_key("k1")
        )
    async with engine.begin() as conn:
        again, created_again = await pay.create_payment(
            conn, fine, "sgbank", "111", NOW, client=_key("k1")
        )
    assert created
    assert not created_again
    assert again.id == first.id
    assert first.status == "initiated"
    assert first.debit_key == pay.debit_key_for(first.id)


async def test_same_key_other_body_is_refused(engine: AsyncEngine) -> None:
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        await pay.create_payment(conn, fine, "sgbank", "111", NOW, client=_key("k1", "a"))
    async with engine.begin() as conn:
        with pytest.raises(IdempotencyConflictError, match="k1"):
            await pay.create_payment(conn, fine, "sgbank", "222", NOW, client=_key("k1", "b"))


async def test_a_second_request_joins_the_live_payment(engine: AsyncEngine) -> None:
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        first, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW, client=_key("k1"))
    async with engine.begin() as conn:
        joined, created = await pay.create_payment(
            conn, fine, "sgbank", "111", NOW, client=_key("k2", "x")
        )
    assert not created
    assert joined.id == first.id


async def test_concurrent_double_submission_makes_one_payment(engine: AsyncEngine) -> None:
    fine = await make_fine(engine)

    async def submit(i: int) -> pay.Payment:
        async with engine.begin() as conn:
            payment, _ = await pay.create_payment(
                conn, fine, "sgbank", "111", NOW, client=_key(f"click-{i}", str(i))
            )
            return payment

    results = await asyncio.gather(*(submit(i) for i in range(8)))
    assert len({p.id for p in results}) == 1
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM payments"))).scalar_one()
    assert count == 1


async def test_state_machine_records_history_and_refuses_bad_moves(engine: AsyncEngine) -> None:
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
        assert await pay.transition(conn, payment.id, "verifying", "bank timeout", NOW)
        assert not await pay.transition(conn, payment.id, "verifying", "again", NOW)
        assert await pay.transition(
            conn, payment.id, "declined", "insufficient funds", NOW, decline_reason="funds"
        )
        with pytest.raises(InvalidTransitionError, match="declined to verifying"):
            await pay.transition(conn, payment.id, "verifying", "late", NOW)
    async with engine.connect() as conn:
        view = await pay.payment_view(conn, payment.id)
        fv = await fine_view(conn, fine.decision_number)
    assert [e.to_status for e in view.history] == ["initiated", "verifying", "declined"]
    assert view.history[1].cause == "bank timeout"
    assert view.payment.decline_reason == "funds"
    assert fv.status == "unpaid"


async def test_settle_books_once_and_pays_the_fine(engine: AsyncEngine) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
        fv = await fine_view(conn, fine.decision_number)
        assert fv.status == "verifying"
    for _ in range(2):
        async with engine.begin() as conn:
            outcome = await pay.settle_payment(conn, payment.id, "B-1", NOW, "bank confirmed")
        assert outcome is pay.SettleOutcome.SETTLED
    async with engine.connect() as conn:
        got = await balances(conn, ["bank:sgbank:clearing", "fines-revenue"])
        assert got == {"bank:sgbank:clearing": 800_000, "fines-revenue": -800_000}
        assert await balances(conn) == await posting_sums(conn)
        fv = await fine_view(conn, fine.decision_number)
    assert fv.status == "paid"
    async with engine.begin() as conn:
        with pytest.raises(FineAlreadyPaidError):
            await pay.create_payment(conn, fine, "sgbank", "111", NOW)


async def test_second_debit_is_a_duplicate_then_refunded(engine: AsyncEngine) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        first, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
        await pay.settle_payment(conn, first.id, "B-1", NOW, "bank confirmed")
    async with engine.begin() as conn:
        dup, created = await pay.record_external_debit(
            conn, fine, "sgbank", "B-2", 800_000, "111", NOW, "bank debited twice"
        )
        again, created_again = await pay.record_external_debit(
            conn, fine, "sgbank", "B-2", 800_000, "111", NOW, "bank debited twice"
        )
        assert created
        assert not created_again
        assert again.id == dup.id
        outcome = await pay.settle_payment(conn, dup.id, "B-2", NOW, "statement line")
    assert outcome is pay.SettleOutcome.DUPLICATE
    async with engine.connect() as conn:
        got = await balances(conn, ["bank:sgbank:clearing", "refunds-payable"])
    assert got == {"bank:sgbank:clearing": 1_600_000, "refunds-payable": -800_000}
    async with engine.begin() as conn:
        assert await pay.mark_refunded(conn, dup.id, "RF-1", NOW)
        assert not await pay.mark_refunded(conn, dup.id, "RF-1", NOW)
        with pytest.raises(InvalidTransitionError, match="settles its fine"):
            await pay.mark_refunded(conn, first.id, "RF-2", NOW)
    async with engine.connect() as conn:
        got = await balances(conn, ["bank:sgbank:clearing", "refunds-payable", "fines-revenue"])
        view = await pay.payment_view(conn, dup.id)
        fv = await fine_view(conn, fine.decision_number)
    assert got == {
        "bank:sgbank:clearing": 800_000,
        "refunds-payable": 0,
        "fines-revenue": -800_000,
    }
    assert view.payment.status == "refunded"
    assert fv.status == "paid"


async def test_external_debit_with_the_wrong_amount_is_refused(engine: AsyncEngine) -> None:
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        with pytest.raises(pay.AmountMismatchError, match="800000"):
            await pay.record_external_debit(
                conn, fine, "hnbank", "T-9", 700_000, "111", NOW, "statement"
            )


async def test_external_debit_settles_an_unpaid_fine_even_with_a_live_payment(
    engine: AsyncEngine,
) -> None:
    """A transfer found in a statement pays the fine; the payment still in
    flight becomes the duplicate when the bank confirms it."""
    await ensure_bank_accounts(engine, "hnbank")
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        live, _ = await pay.create_payment(conn, fine, "hnbank", "111", NOW)
        ext, _ = await pay.record_external_debit(
            conn, fine, "hnbank", "T-1", 800_000, "999", NOW, "statement"
        )
        assert await pay.settle_payment(conn, ext.id, "T-1", NOW, "s") is pay.SettleOutcome.SETTLED
        assert (
            await pay.settle_payment(conn, live.id, "T-2", NOW, "bank confirmed")
            is pay.SettleOutcome.DUPLICATE
        )
        nxt = await pay.next_live_payment(conn, ext.id)
    assert nxt is None
