"""Settling a batch of confirmed debits in one transaction
(``settle_many_with_receipts``, the link recovery's bulk step), on the real
embedded PostgreSQL: it writes, row for row, what ``settle_with_receipt``
writes for each payment one after the other; it is idempotent; and it runs
alongside the payment workflows' own settlements of the same fines without
deadlocking or breaking an invariant."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import payments as pay
from ledger.core.audit import verify_audit_chain
from ledger.core.errors import InvalidTransitionError, NotFoundError
from ledger.core.postings import balances, posting_sums
from ledger.fines import Fine
from ledger.receipts.issue import verify_receipts
from ledger.receipts.signing import ReceiptSigner
from tests.support import db
from tests.support.ledger import ensure_bank_accounts, make_fine

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
SIGNER = ReceiptSigner.generate()
CAUSE = "bank confirmed the debit when its link came back"
UNITS = ("Phòng CSGT Hà Nội", "Đội CSGT số 1 - Công an quận Hoàn Kiếm")


@dataclass(frozen=True)
class Story:
    """One set of payments in every case a batch meets, and the confirmed
    debits to book, in order. ``names`` maps each id, decision number and
    bank reference of the set to a name the other set's share."""

    confirmed: list[pay.Confirmed]
    names: dict[str, str]


async def _fine(engine: AsyncEngine, prefix: str, i: int) -> Fine:
    return await make_fine(
        engine, f"{prefix}{i:03d}/QĐ-XPHC", 500_000 + 1_000 * i, UNITS[i % len(UNITS)]
    )


async def _story(engine: AsyncEngine, prefix: str) -> Story:
    """Five fines with one payment in flight each (two units); a fine with
    its payment and a second debit the bank made (the first listed settles
    it); a payment settled before; a declined payment; an unknown id."""
    names: dict[str, str] = {}
    confirmed: list[pay.Confirmed] = []

    def name(value: object, as_: str) -> str:
        names[str(value)] = as_
        return str(value)

    async with engine.begin() as conn:
        for i in range(8):
            fine = await _fine(engine, prefix, i)
            name(fine.decision_number, f"decision-{i}")
            payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
            name(payment.id, f"payment-{i}")
            ref = name(f"{prefix}-REF-{i}", f"ref-{i}")
            if i == 5:
                second, _ = await pay.record_external_debit(
                    conn, fine, "sgbank", f"{prefix}-X-{i}", fine.amount_vnd, "111", NOW, "twice"
                )
                name(second.id, f"second-{i}")
                name(f"{prefix}-X-{i}", f"ref-x-{i}")
                confirmed.append(pay.Confirmed(second.id, f"{prefix}-X-{i}"))
            if i == 6:
                await pay.settle_with_receipt(conn, payment.id, ref, NOW, "earlier", SIGNER)
            if i == 7:
                await pay.transition(conn, payment.id, "declined", "declined", NOW)
            confirmed.append(pay.Confirmed(payment.id, ref))
    unknown = uuid.uuid4()
    name(unknown, "unknown")
    confirmed.append(pay.Confirmed(unknown, f"{prefix}-REF-unknown"))
    return Story(confirmed, names)


async def _one_by_one(engine: AsyncEngine, story: Story) -> dict[UUID, Any]:
    """``settle_with_receipt`` for each, in order, each in its transaction."""
    results: dict[UUID, Any] = {}
    for item in story.confirmed:
        try:
            async with engine.begin() as conn:
                results[item.payment_id] = await pay.settle_with_receipt(
                    conn, item.payment_id, item.bank_ref, NOW, CAUSE, SIGNER
                )
        except (InvalidTransitionError, NotFoundError) as err:
            results[item.payment_id] = type(err).__name__
    return results


async def _batch(engine: AsyncEngine, story: Story) -> pay.BatchSettlement:
    async with engine.begin() as conn:
        return await pay.settle_many_with_receipts(conn, story.confirmed, NOW, CAUSE, SIGNER)


def _named(value: Any, names: dict[str, str]) -> Any:
    text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    for raw in sorted(names, key=len, reverse=True):
        text = text.replace(raw, names[raw])
    return json.loads(text)


async def _written(engine: AsyncEngine, story: Story) -> dict[str, Any]:
    """Every row the story's payments have, by kind, ids and numbers named."""
    ids = [c.payment_id for c in story.confirmed]
    keys = [f"pay:{i}" for i in ids]
    subjects = [str(i) for i in ids]
    queries = {
        "payments": "SELECT id, status, settles_fine, bank_ref, debited_at, updated_at "
        "FROM payments WHERE id = ANY(:ids) ORDER BY id",
        "events": "SELECT payment_id, at, from_status, to_status, cause, detail "
        "FROM payment_events WHERE payment_id = ANY(:ids) ORDER BY payment_id, id",
        "entries": "SELECT idempotency_key, kind, description, content_hash, metadata "
        "FROM journal_entries WHERE idempotency_key = ANY(:keys) ORDER BY idempotency_key",
        "postings": "SELECT e.idempotency_key, a.code, p.amount_vnd FROM postings p "
        "JOIN journal_entries e ON e.id = p.entry_id JOIN accounts a ON a.id = p.account_id "
        "WHERE e.idempotency_key = ANY(:keys) ORDER BY 1, 2",
        # The receipt's number is the order within its series (checked
        # apart): the two sets share the series of their units.
        "receipts": "SELECT payment_id, issued_at, payload - 'number' - 'series' AS payload, "
        "rank() OVER (PARTITION BY series ORDER BY number) AS place, key_id, copies "
        "FROM receipts WHERE payment_id = ANY(:ids) ORDER BY payment_id",
        "audit": "SELECT subject_id, actor, action, at, detail FROM audit_log "
        "WHERE subject_id = ANY(:subjects) ORDER BY subject_id, id",
    }
    written: dict[str, Any] = {}
    for kind, sql in queries.items():
        found = await db.rows(engine, sql, ids=ids, keys=keys, subjects=subjects)
        rows = [dict(row._mapping) for row in found]
        named = _named(rows, story.names)
        # Ordered by what the rows are named, not by their random ids.
        written[kind] = sorted(named, key=lambda r: json.dumps(r, sort_keys=True))
    return written


async def test_a_batch_writes_what_settling_one_by_one_writes(engine: AsyncEngine) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    batch_story = await _story(engine, "1")
    single_story = await _story(engine, "2")
    singles = await _one_by_one(engine, single_story)
    batch = await _batch(engine, batch_story)

    assert await _written(engine, batch_story) == await _written(engine, single_story)
    # The same outcome per payment, and the same refusals.
    for mine, theirs in zip(batch_story.confirmed, single_story.confirmed, strict=True):
        single = singles[theirs.payment_id]
        if isinstance(single, str):
            assert mine.payment_id in batch.refused, single
            assert mine.payment_id not in batch.settled
            continue
        got = batch.settled[mine.payment_id]
        assert got.outcome is single.outcome
        assert got.receipt_issued_now is single.receipt_issued_now
        assert (got.receipt is None) is (single.receipt is None)
    assert batch.refused[batch_story.confirmed[-1].payment_id] == "no such payment"
    declined = batch_story.confirmed[-2].payment_id
    assert "but it is declined" in batch.refused[declined]
    async with engine.connect() as conn:
        assert await balances(conn) == await posting_sums(conn)
        assert (await verify_receipts(conn, SIGNER.verifier())).all_ok
        assert (await verify_audit_chain(conn)).ok


async def test_a_batch_numbers_each_units_receipts_in_the_order_given(
    engine: AsyncEngine,
) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    confirmed = []
    async with engine.begin() as conn:
        for i in range(6):
            fine = await _fine(engine, "3", i)
            payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
            confirmed.append(pay.Confirmed(payment.id, f"R-{i}"))
    confirmed.reverse()
    async with engine.begin() as conn:
        batch = await pay.settle_many_with_receipts(conn, confirmed, NOW, CAUSE, SIGNER)
    numbers: dict[str, list[int]] = {}
    for item in confirmed:
        receipt = batch.settled[item.payment_id].receipt
        assert receipt is not None
        numbers.setdefault(receipt.series, []).append(receipt.number)
    assert sorted(numbers.values()) == [[1, 2, 3], [1, 2, 3]]


async def test_settling_a_batch_again_changes_nothing(engine: AsyncEngine) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    story = await _story(engine, "4")
    first = await _batch(engine, story)
    before = await _written(engine, story)
    counts = "SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM journal_entries)"
    rows_before = (await db.rows(engine, counts))[0]
    again = await _batch(engine, story)
    assert await _written(engine, story) == before
    assert (await db.rows(engine, counts))[0] == rows_before
    assert again.refused == first.refused
    for payment_id, settled in first.settled.items():
        assert again.settled[payment_id].outcome is settled.outcome
        assert again.settled[payment_id].receipt == settled.receipt
        assert not again.settled[payment_id].receipt_issued_now


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ids: [], "settle 1..500 payments at once, not 0"),
        (lambda ids: [pay.Confirmed(ids[0], "A"), pay.Confirmed(ids[0], "B")], "twice"),
        (
            lambda ids: [pay.Confirmed(uuid.uuid4(), f"R{i}") for i in range(501)],
            "not 501",
        ),
    ],
    ids=["empty", "duplicate-payment", "too-many"],
)
async def test_a_malformed_batch_is_refused_and_writes_nothing(
    engine: AsyncEngine, make: Any, message: str
) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    fine = await make_fine(engine)
    async with engine.begin() as conn:
        payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
    with pytest.raises(ValueError, match=message):
        async with engine.begin() as conn:
            await pay.settle_many_with_receipts(conn, make([payment.id]), NOW, CAUSE, SIGNER)
    assert await db.value(engine, "SELECT count(*) FROM journal_entries") == 0
    assert await db.value(engine, "SELECT status FROM payments") == "initiated"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_batches_and_single_settlements_of_the_same_fines_never_deadlock(
    engine: AsyncEngine, seed: int
) -> None:
    """Two batches and the one-by-one settlements of a workflow, on the same
    fines (their payments and second debits of them), units and accounts,
    all at once in random orders. A cycle in the lock order would end in
    PostgreSQL's deadlock error; the books must come out whole."""
    rng = random.Random(seed)
    await ensure_bank_accounts(engine, "sgbank")
    fines = 40
    portal: list[pay.Confirmed] = []
    seconds: list[pay.Confirmed] = []
    async with engine.begin() as conn:
        for i in range(fines):
            fine = await _fine(engine, "5", i)
            payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW)
            second, _ = await pay.record_external_debit(
                conn, fine, "sgbank", f"X-{i}", fine.amount_vnd, "111", NOW, "twice"
            )
            portal.append(pay.Confirmed(payment.id, f"R-{i}"))
            seconds.append(pay.Confirmed(second.id, f"X-{i}"))
    first_batch = rng.sample(portal, len(portal))
    second_batch = rng.sample(seconds[fines // 2 :], fines // 2)
    singles = rng.sample(seconds[: fines // 2], fines // 2)
    limit = asyncio.Semaphore(3)

    async def batch(items: list[pay.Confirmed]) -> None:
        for start in range(0, len(items), 10):
            async with engine.begin() as conn:
                await pay.settle_many_with_receipts(
                    conn, items[start : start + 10], NOW, CAUSE, SIGNER
                )

    async def single(item: pay.Confirmed) -> None:
        async with limit, engine.begin() as conn:
            await pay.settle_with_receipt(conn, item.payment_id, item.bank_ref, NOW, CAUSE, SIGNER)

    await asyncio.gather(
        batch(first_batch), batch(second_batch), *(single(item) for item in singles)
    )
    per_fine = await db.rows(
        engine,
        "SELECT fine_id, count(*) FILTER (WHERE settles_fine) AS settling, "
        "count(*) FILTER (WHERE status = 'succeeded') AS succeeded FROM payments GROUP BY fine_id",
    )
    assert [(row.settling, row.succeeded) for row in per_fine] == [(1, 2)] * fines
    assert await db.value(engine, "SELECT count(*) FROM receipts") == fines
    async with engine.connect() as conn:
        assert await balances(conn) == await posting_sums(conn)
        assert (await verify_receipts(conn, SIGNER.verifier())).all_ok
        assert (await verify_audit_chain(conn)).ok
