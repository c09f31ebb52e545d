"""A bank whose calls hang must not starve the other banks' payments.

Bank A (sgbank) takes the debits and holds every answer
(``timeout_after_debit``): each of its calls hangs in the worker until the
client's read timeout. As many A payments as the worker has bank slots fill
them. Payments through bank B (hnbank) must then complete on their normal
path while A's first calls still hang: each A payment is still ``initiated``
(its send has not returned) when every B payment has its receipt. With one
pool of slots for every bank, B's calls waited for a slot that only an A
call returning could free, which moves its payment on to ``verifying``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.stack import SagaStack, eventually

# Bank slots per worker: small, so that a few hung calls fill them.
SLOTS = 2
HUNG_BANK = "sgbank"
HEALTHY_BANK = "hnbank"
HEALTHY_PAYMENTS = 2
# How long A's answers are held: far beyond the test, never reached (the
# client's read timeout ends each call first, and the test cuts them).
HANG_SECONDS = 600.0
SETTLED = {"succeeded"}


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"worker_bank_activities_max": SLOTS}


async def _pay(stack: SagaStack, bank: str) -> str:
    status, started = await stack.pay(await stack.new_fine(), bank)
    assert status == 202, started
    return str(started["payment_id"])


async def test_hung_bank_does_not_starve_the_others(stack: SagaStack) -> None:
    hung = stack.admins[HUNG_BANK]
    await hung.add_fault("timeout_after_debit", hang_seconds=HANG_SECONDS)
    stuck = [await _pay(stack, HUNG_BANK) for _ in range(SLOTS)]

    async def debits_taken() -> bool:
        return len(await stack.bank_movements(HUNG_BANK, "debit")) == SLOTS

    # Bank A carried out every debit and holds the answers: its calls are in
    # flight, every bank slot of the worker's held by one.
    await eventually(debits_taken, 30, f"{SLOTS} debits taken by {HUNG_BANK}")
    try:
        healthy = await asyncio.gather(
            *(_pay(stack, HEALTHY_BANK) for _ in range(HEALTHY_PAYMENTS))
        )
        for payment_id in healthy:
            payment = await stack.wait_payment(payment_id, SETTLED)
            assert payment["receipt"] is not None
        # ...while A's first calls still hang: no send of A's has returned.
        for payment_id in stuck:
            assert (await stack.payment(payment_id))["status"] == "initiated"
    finally:
        # Cut the held answers (a real outage would), so that the worker's
        # shutdown does not wait out the client's read timeout.
        await hung.add_fault("link_down", seconds=1.0)
        await hung.clear_faults()
