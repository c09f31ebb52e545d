"""A payment in doubt past the configured age: finance gets a discrepancy
(and the outbox a notice) from the payment saga itself, while the payment
keeps being verified and is settled as soon as the bank answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import db
from tests.support.stack import SagaStack, eventually

BANK = "hnbank"  # VietQR: no webhooks; only status checks resolve a payment


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {
        "in_doubt_alert_seconds": 1.0,
        "verify_poll_interval_seconds_initial": 0.2,
        "verify_poll_interval_seconds_max": 0.4,
    }


async def _in_doubt_discrepancies(stack: SagaStack) -> list[dict[str, object]]:
    status, page = await stack.call(
        "GET", "/api/v1/discrepancies", params={"kind": "in_doubt_too_long", "bank": BANK}
    )
    assert status == 200, page
    return list(page["items"])


async def test_in_doubt_too_long_opens_one_discrepancy_and_keeps_verifying(
    stack: SagaStack,
) -> None:
    await stack.admins[BANK].add_fault("malformed")
    status, started = await stack.pay(await stack.new_fine(), BANK)
    assert status == 202, started
    payment_id = started["payment_id"]

    [found] = await eventually(
        lambda: _in_doubt_discrepancies(stack), 30, "the saga's in-doubt discrepancy"
    )
    assert found["payment_id"] == payment_id, found
    assert found["status"] == "open", found
    assert found["reconciliation_id"] is None, found
    # Never called failed: still verifying, and still checked with the bank.
    assert (await stack.payment(payment_id))["status"] == "verifying"
    notices = await db.rows(
        stack.engine,
        "SELECT payload FROM outbox WHERE kind = 'payment_in_doubt'"
        " AND payload->>'payment_id' = :pid",
        pid=payment_id,
    )
    assert [n.payload["discrepancy_id"] for n in notices] == [found["id"]]

    await stack.admins[BANK].clear_faults()
    payment = await stack.wait_payment(payment_id, {"succeeded"})
    assert payment["receipt"] is not None
    # One discrepancy for the payment, however many checks ran meanwhile.
    assert [d["id"] for d in await _in_doubt_discrepancies(stack)] == [found["id"]]
