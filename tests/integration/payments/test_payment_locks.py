"""Lock order between settling a payment and a second request for its fine.

Settling locks the payment row, then the fine row. A second request for the
same fine (a double click, the portal retrying) locks the fine row, joins the
live payment and binds its Idempotency-Key to it: a row whose foreign key
points at the payment, so PostgreSQL takes a KEY SHARE lock on the payment
row. If the payment lock were FOR UPDATE, the two would wait for each other
and PostgreSQL would abort one (the citizen gets an HTTP 500, or the settle
step fails). The payment lock is FOR NO KEY UPDATE: it never blocks a row
that only refers to the payment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import payments as pay
from tests.support.ledger import ensure_bank_accounts, make_fine
from tests.support.stack import eventually

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


async def _blocked_or_done(engine: AsyncEngine, task: asyncio.Task[object], pid: int) -> bool:
    if task.done():
        return True
    async with engine.connect() as conn:
        waiting = (
            await conn.execute(
                text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            )
        ).scalar_one()
    return bool(waiting)


async def test_settling_and_a_second_request_for_the_fine_do_not_deadlock(
    engine: AsyncEngine,
) -> None:
    await ensure_bank_accounts(engine, "sgbank")
    fine = await make_fine(engine)
    first_key = pay.ClientKey("portal", "click-1", pay.request_hash({"b": "sgbank"}))
    async with engine.begin() as conn:
        payment, _ = await pay.create_payment(conn, fine, "sgbank", "111", NOW, client=first_key)

    async with engine.connect() as settler, engine.connect() as requester:
        await settler.begin()
        # The settle step has locked its payment row...
        await pay.get_payment(settler, payment.id, for_update=True)
        await requester.begin()
        requester_pid = (await requester.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        second_key = pay.ClientKey("portal", "click-2", pay.request_hash({"b": "sgbank"}))

        async def second_request() -> tuple[pay.Payment, bool]:
            joined = await pay.create_payment(
                requester, fine, "sgbank", "111", NOW, client=second_key
            )
            await requester.commit()
            return joined

        # ...when the second click comes in: it must get through (or at
        # worst wait) before the settle step asks for the fine row.
        request = asyncio.create_task(second_request())
        await eventually(
            lambda: _blocked_or_done(engine, request, requester_pid),
            30,
            "the second request to finish or wait for a lock",
        )
        outcome = await pay.settle_payment(settler, payment.id, "FT1", NOW, "bank confirmed")
        await settler.commit()
        joined, created = await request

    assert outcome is pay.SettleOutcome.SETTLED
    assert joined.id == payment.id
    assert created is False
