"""Bank callbacks: duplicate debits notified by the bank, forged, replayed,
stale and late webhooks. Nothing but a verified callback changes anything."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from sqlalchemy import text

from bank_adapters.webhooks import sign_webhook
from ledger.core.postings import balances, posting_sums
from tests.support.stack import SagaStack, eventually


async def _count(stack: SagaStack, sql: str) -> int:
    async with stack.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def _snapshot(stack: SagaStack) -> tuple[int, int, int, int]:
    return (
        await _count(stack, "SELECT count(*) FROM payments"),
        await _count(stack, "SELECT count(*) FROM payment_events"),
        await _count(stack, "SELECT count(*) FROM journal_entries"),
        await _count(stack, "SELECT count(*) FROM receipts"),
    )


def _event(key: str, bank_ref: str, amount: int, status: str = "succeeded") -> bytes:
    return json.dumps(
        {
            "event_id": f"evt_{bank_ref}",
            "type": "debit.updated",
            "idempotency_key": key,
            "bank_ref": bank_ref,
            "status": status,
            "reason_code": None,
            "reason": None,
            "amount": amount,
            "currency": "VND",
            "occurred_at": "2026-11-23T03:00:00+00:00",
        }
    ).encode()


async def _post(stack: SagaStack, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with stack.session.post(
        f"{stack.api_url}/webhooks/sgbank",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    ) as resp:
        return resp.status, await resp.json(content_type=None)


def _secret(stack: SagaStack) -> bytes:
    return stack.settings.banks["sgbank"].webhook_secret.encode()


async def test_duplicate_debit_by_the_bank_gives_one_receipt_and_one_refund(
    stack: SagaStack,
) -> None:
    bank = "sgbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("duplicate_debit", seconds=30)
    _, started = await stack.pay(dn, bank)
    await stack.wait_payment(started["payment_id"], {"succeeded"})

    # The bank books the refund before it answers, and the ledger books it after
    # the answer: wait for the ledger, which comes last.
    async def refunded() -> dict[str, Any] | None:
        fine = await stack.fine(dn)
        return fine if any(p["status"] == "refunded" for p in fine["payments"]) else None

    fine = await eventually(refunded, 30, "the duplicate to be refunded")
    assert fine["status"] == "paid"
    statuses = sorted(p["status"] for p in fine["payments"])
    assert statuses == ["refunded", "succeeded"]
    debits = await stack.bank_movements(bank, "debit")
    refunds = await stack.bank_movements(bank, "refund")
    assert len(debits) == 2, debits
    assert len(refunds) == 1
    assert refunds[0]["amount_vnd"] == debits[0]["amount_vnd"]

    async def booked() -> bool:
        async with stack.engine.connect() as conn:
            got = await balances(conn, ["refunds-payable"])
        return got == {"refunds-payable": 0}

    await eventually(booked, 10, "the refund to be booked")
    assert await _count(stack, "SELECT count(*) FROM receipts") == 1
    async with stack.engine.connect() as conn:
        assert await balances(conn) == await posting_sums(conn)


async def test_forged_stale_and_replayed_callbacks_are_refused(stack: SagaStack) -> None:
    bank = "sgbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("lost_response", seconds=60)
    # The bank webhooks also carry the truth; hold them back for this test.
    await stack.admins[bank].add_fault("late_webhook", seconds=60, delay_seconds=600)
    _, started = await stack.pay(dn, bank)

    async def verifying() -> bool:
        return (await stack.payment(started["payment_id"]))["status"] == "verifying"

    await eventually(verifying, 20, "the payment to be verifying")
    # Freeze the saga so that only a webhook could change anything now.
    await stack.stop_worker()
    payment = await stack.payment(started["payment_id"])
    key = f"fp-{started['payment_id'].replace('-', '')}"
    body = _event(key, "FORGED-REF-1", payment["amount_vnd"])
    before = await _snapshot(stack)
    now = int(time.time())

    forged = sign_webhook(b"not-the-secret", body, timestamp=now, nonce=secrets.token_hex(8))
    status, answer = await _post(stack, body, forged)
    assert status == 401
    assert answer["error"]["code"] == "webhook_bad_signature"

    stale = sign_webhook(_secret(stack), body, timestamp=now - 3600, nonce=secrets.token_hex(8))
    status, answer = await _post(stack, body, stale)
    assert status == 401
    assert answer["error"]["code"] == "webhook_stale_timestamp"

    status, answer = await _post(stack, body, {})
    assert status == 401
    assert await _snapshot(stack) == before
    assert (await stack.payment(started["payment_id"]))["status"] != "succeeded"

    # A genuine callback is accepted once; the same delivery replayed is refused.
    await stack.admins[bank].clear_faults()
    genuine = sign_webhook(_secret(stack), body, timestamp=now, nonce=secrets.token_hex(8))
    status, answer = await _post(stack, body, genuine)
    assert status == 200, answer
    status, answer = await _post(stack, body, genuine)
    assert status == 401
    assert answer["error"]["code"] == "webhook_replayed_nonce"


async def test_late_and_duplicate_webhooks_change_nothing_after_the_fact(
    stack: SagaStack,
) -> None:
    bank = "sgbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("late_webhook", seconds=60, delay_seconds=3)
    _, started = await stack.pay(dn, bank)
    payment = await stack.wait_payment(started["payment_id"], {"succeeded"})

    async def delivered() -> bool:
        hooks = await stack.admins[bank].webhooks()
        return any(h.get("delivered_at") for h in hooks)

    await eventually(delivered, 30, "the late webhook to be delivered")
    after_late = await _snapshot(stack)
    # The bank sends the same news again (new nonce, same content).
    key = f"fp-{started['payment_id'].replace('-', '')}"
    body = _event(key, payment["bank_ref"], payment["amount_vnd"])
    headers = sign_webhook(
        _secret(stack), body, timestamp=int(time.time()), nonce=secrets.token_hex(8)
    )
    status, answer = await _post(stack, body, headers)
    assert status == 200
    assert answer["status"] == "duplicate"
    assert await _snapshot(stack) == after_late
    assert await _count(stack, "SELECT count(*) FROM receipts") == 1
    assert len(await stack.bank_movements(bank, "debit")) == 1


async def test_callback_for_an_unknown_key_is_ignored(stack: SagaStack) -> None:
    before = await _snapshot(stack)
    body = _event("fp-" + "0" * 32, "REF-X", 1000)
    headers = sign_webhook(
        _secret(stack), body, timestamp=int(time.time()), nonce=secrets.token_hex(8)
    )
    status, answer = await _post(stack, body, headers)
    assert status == 200
    assert answer["status"].startswith("ignored")
    assert await _snapshot(stack) == before
