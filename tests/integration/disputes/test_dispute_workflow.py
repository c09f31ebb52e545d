"""DisputeWorkflow end to end over real components: the API records the
complaint and the decisions, a real Temporal worker carries them out, the
bank simulators (over HTTP) hold the ground truth of every debit and refund.

Paths: approval → confirm (the fine is paid with one receipt) and refund (the
bank's GET /debits shows our refund); rejection; timeout (expired, audited,
reminders sent); evidence while the bank link is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.audit import verify_audit_chain
from ledger.core.postings import balances, posting_sums
from reconciler.devstack.temporal import TemporalInfo
from tests.support.api import make_token
from tests.support.stack import PAYER, SagaStack, eventually, saga_stack
from workflows.disputes import types as dt

Who = dict[str, str]
StackFactory = Callable[..., AbstractAsyncContextManager[SagaStack]]
FINE_VND = 800_000


@pytest.fixture
def dispute_stack(
    tmp_path: Path,
    engine: AsyncEngine,
    db_url: str,
    temporal_server: TemporalInfo,
    task_queue: str,
) -> StackFactory:
    """A stack whose worker runs the dispute workflow (with the settings
    overrides a test passes)."""

    def make(**overrides: Any) -> AbstractAsyncContextManager[SagaStack]:
        return saga_stack(
            tmp_path,
            engine,
            db_url,
            temporal_server.address,
            task_queue,
            full_worker=True,
            **overrides,
        )

    return make


async def _begin(stack: SagaStack) -> tuple[dict[str, Who], str]:
    """The people who act, and an unpaid fine."""
    return await _people(stack.engine), await stack.new_fine(FINE_VND)


async def _people(engine: AsyncEngine) -> dict[str, Who]:
    people = {}
    for name, role in (("fin", "finance"), ("fin2", "finance"), ("appr", "approver")):
        people[name] = {"Authorization": f"Bearer {await make_token(engine, role, name)}"}
    return people


async def _call(stack: SagaStack, method: str, path: str, who: Who, **kw: Any) -> Any:
    status, body = await stack.call(method, path, headers=who, **kw)
    return status, body


async def _open(
    stack: SagaStack, who: Who, number: str, bank: str, amount_vnd: int, bank_ref: str | None
) -> dict[str, Any]:
    complaint = {
        "decision_number": number,
        "bank": bank,
        "amount_vnd": amount_vnd,
        "occurred_at": datetime.now(UTC).isoformat(),
        "description": "Đã bị trừ tiền nhưng không nhận được biên lai",
        "payer_account": PAYER,
    }
    if bank_ref is not None:
        complaint["bank_ref"] = bank_ref
    status, body = await _call(stack, "POST", "/api/v1/disputes", who, json=complaint)
    assert status == 201, body
    return dict(body)


async def _request(stack: SagaStack, who: Who, dispute_id: int, action: str) -> int:
    status, body = await _call(
        stack,
        "POST",
        f"/api/v1/disputes/{dispute_id}/resolutions",
        who,
        json={"action": action, "reason": f"{action}: the bank statement shows the debit"},
    )
    assert status == 202, body
    assert body["workflow_started"] is True
    return int(body["approval"]["id"])


async def _decide(
    stack: SagaStack, who: Who, approval_id: int, decision: str, **kw: Any
) -> tuple[int, Any]:
    return await _call(stack, "POST", f"/api/v1/approvals/{approval_id}/{decision}", who, **kw)


async def _dispute(stack: SagaStack, who: Who, dispute_id: int) -> dict[str, Any]:
    status, body = await _call(stack, "GET", f"/api/v1/disputes/{dispute_id}", who)
    assert status == 200, body
    return dict(body)


async def _wait_status(stack: SagaStack, who: Who, dispute_id: int, status: str) -> Any:
    async def probe() -> dict[str, Any] | None:
        body = await _dispute(stack, who, dispute_id)
        return body if body["status"] == status else None

    return await eventually(probe, 30, f"dispute {dispute_id} to be {status}")


async def _outcome(stack: SagaStack, dispute_id: int) -> dt.DisputeOutcome:
    handle = stack.client.get_workflow_handle(
        f"dispute/{dispute_id}", result_type=dt.DisputeOutcome
    )
    result: dt.DisputeOutcome = await asyncio.wait_for(handle.result(), 30)
    return result


async def _assert_books_and_audit(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        cached = await balances(conn)
        assert cached == await posting_sums(conn)
        assert sum(cached.values()) == 0
        report = await verify_audit_chain(conn)
    assert report.ok, report.problems


async def _audit_actions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT action FROM audit_log ORDER BY id"))
        return [r.action for r in rows]


async def test_approved_confirm_pays_the_fine_with_one_receipt(dispute_stack: StackFactory) -> None:
    async with dispute_stack() as stack:
        who, number = await _begin(stack)
        # The citizen paid by their own transfer, without our reference: the
        # ledger never heard of it.
        transfer = await stack.admins["hnbank"].transfer(PAYER, FINE_VND, "NOP PHAT GIAO THONG")
        opened = await _open(stack, who["fin"], number, "hnbank", FINE_VND, transfer["bank_ref"])
        assert opened["evidence"]["fine"]["status"] == "unpaid"
        approval_id = await _request(stack, who["fin"], opened["id"], "confirm")
        status, body = await _decide(stack, who["fin"], approval_id, "approve")
        assert status == 403  # finance may not approve at all
        status, body = await _decide(
            stack, who["appr"], approval_id, "approve", json={"reason": "statement line checked"}
        )
        assert status == 200, body
        assert body["workflow_signalled"] is True
        outcome = await _outcome(stack, opened["id"])
        assert outcome.outcome == dt.Resolution.CONFIRMED
        dispute = await _wait_status(stack, who["fin"], opened["id"], "confirmed")
        assert dispute["result"]["receipt_number"] == outcome.receipt_number
        assert dispute["result"]["approved_by"] == "appr"
        fine = await stack.fine(number)
        assert fine["status"] == "paid"
        assert fine["receipt"]["number"] == outcome.receipt_number
        async with stack.engine.connect() as conn:
            receipts = (await conn.execute(text("SELECT count(*) FROM receipts"))).scalar_one()
        assert receipts == 1
        # Nothing else moved at the bank: the one transfer, no refund.
        assert [m["kind"] for m in await stack.bank_movements("hnbank")] == ["transfer"]
        await _assert_books_and_audit(stack.engine)
        actions = await _audit_actions(stack.engine)
        for action in (
            "dispute.opened",
            "approval.requested",
            "approval.approved",
            "payment.external_debit_recorded",
            "payment.settled",
            "approval.executed",
            "dispute.confirmed",
        ):
            assert action in actions, action


async def test_approved_refund_is_made_at_the_bank_once(dispute_stack: StackFactory) -> None:
    async with dispute_stack() as stack:
        who, number = await _begin(stack)
        transfer = await stack.admins["sgbank"].transfer(PAYER, 500_000, "NOP PHAT")
        opened = await _open(stack, who["fin"], number, "sgbank", 500_000, transfer["bank_ref"])
        approval_id = await _request(stack, who["fin"], opened["id"], "refund")
        status, body = await _decide(stack, who["appr"], approval_id, "approve")
        assert status == 200, body
        outcome = await _outcome(stack, opened["id"])
        assert outcome.outcome == dt.Resolution.REFUNDED
        dispute = await _wait_status(stack, who["fin"], opened["id"], "refunded")
        refunds = await stack.bank_movements("sgbank", "refund")
        assert len(refunds) == 1
        assert refunds[0]["idempotency_key"] == f"dispute-{opened['id']}-refund"
        assert (refunds[0]["amount_vnd"], refunds[0]["status"]) == (500_000, "succeeded")
        assert dispute["result"]["refund_ref"] == refunds[0]["bank_ref"]
        assert (await stack.fine(number))["status"] == "unpaid"
        async with stack.engine.connect() as conn:
            left = await balances(conn, ["suspense", "bank:sgbank:clearing"])
        assert left == {"suspense": 0, "bank:sgbank:clearing": 0}
        await _assert_books_and_audit(stack.engine)
        assert "dispute.refund_booked" in await _audit_actions(stack.engine)


async def test_rejected_approval_reopens_the_dispute(dispute_stack: StackFactory) -> None:
    async with dispute_stack() as stack:
        who, number = await _begin(stack)
        opened = await _open(stack, who["fin"], number, "sgbank", FINE_VND, "FT0000000000")
        approval_id = await _request(stack, who["fin"], opened["id"], "confirm")
        status, body = await _decide(
            stack,
            who["appr"],
            approval_id,
            "reject",
            json={"reason": "no such debit on the statement"},
        )
        assert status == 200, body
        outcome = await _outcome(stack, opened["id"])
        assert outcome.outcome == dt.Resolution.REJECTED
        dispute = await _dispute(stack, who["fin"], opened["id"])
        assert dispute["status"] == "open"
        assert dispute["evidence"]["fine"]["status"] == "unpaid"
        assert await stack.bank_movements("sgbank") == []
        # Finance may ask again; the new request gets its own workflow run.
        second = await _request(stack, who["fin2"], opened["id"], "confirm")
        assert second != approval_id
        await _assert_books_and_audit(stack.engine)


async def test_nobody_decides_in_time_the_approval_expires(dispute_stack: StackFactory) -> None:
    async with dispute_stack(
        dispute_approval_timeout_seconds=2.5,
        dispute_reminder_interval_seconds=0.8,
        dispute_reminders_max=2,
    ) as stack:
        who, number = await _begin(stack)
        opened = await _open(stack, who["fin"], number, "sgbank", FINE_VND, "FT0000000001")
        approval_id = await _request(stack, who["fin"], opened["id"], "confirm")
        outcome = await _outcome(stack, opened["id"])
        assert outcome.outcome == dt.Resolution.EXPIRED
        dispute = await _dispute(stack, who["fin"], opened["id"])
        assert dispute["status"] == "open"
        assert [a["status"] for a in dispute["approvals"]] == ["expired"]
        history = [(h["action"], h["actor"]) for h in dispute["history"]]
        assert ("approval.expired", "system:timeout") in history
        assert ("dispute.reopened", "system:timeout") in history
        reminders = [h for h in dispute["history"] if h["action"] == "approval.reminder_sent"]
        assert 1 <= len(reminders) <= 2
        async with stack.engine.connect() as conn:
            notices = (
                await conn.execute(
                    text("SELECT count(*) FROM outbox WHERE kind = 'approval_reminder'")
                )
            ).scalar_one()
        assert notices == len(reminders)
        status, body = await _decide(stack, who["appr"], approval_id, "approve")
        assert status == 409, body
        await _assert_books_and_audit(stack.engine)


async def test_evidence_says_when_the_bank_is_down(dispute_stack: StackFactory) -> None:
    async with dispute_stack(evidence_bank_timeout_seconds=2.0) as stack:
        who, number = await _begin(stack)
        bank = "sgbank"
        status, started = await stack.pay(number, bank)
        assert status == 202
        paid = await stack.wait_payment(started["payment_id"], {"succeeded"})
        await stack.admins[bank].add_fault("link_down", seconds=60)
        opened = await _open(stack, who["fin"], number, bank, FINE_VND, None)
        evidence = opened["evidence"]
        assert evidence["bank"]["reachable"] is False
        assert "unreachable" in evidence["bank"]["note"]
        assert [c["outcome"] for c in evidence["bank"]["checks"]] == ["link_down"]
        assert evidence["fine"]["status"] == "paid"
        [payment] = evidence["payments"]
        assert payment["payment_id"] == started["payment_id"]
        assert payment["history"][-1]["to_status"] == "succeeded"
        await stack.admins[bank].clear_faults()
        status, body = await _call(
            stack, "POST", f"/api/v1/disputes/{opened['id']}/evidence/refresh", who["fin"]
        )
        assert status == 200, body
        live = (await _dispute(stack, who["fin"], opened["id"]))["evidence"]["bank"]
        assert live == body["evidence"]["bank"]
        assert live["reachable"] is True
        assert live["checks"][0]["outcome"] == "succeeded"
        assert live["checks"][0]["bank_ref"] == paid["bank_ref"]


STAFF_ACCOUNT = "770077007700"


async def _staff_complaint(
    stack: SagaStack, who: Who, number: str, amount_vnd: int, bank_ref: str
) -> dict[str, Any]:
    """A complaint typed by staff with their own account as the payer's."""
    complaint = {
        "decision_number": number,
        "bank": "hnbank",
        "amount_vnd": amount_vnd,
        "occurred_at": datetime.now(UTC).isoformat(),
        "description": "Hoàn tiền cho người nộp",
        "bank_ref": bank_ref,
        "payer_account": STAFF_ACCOUNT,
    }
    status, body = await _call(stack, "POST", "/api/v1/disputes", who, json=complaint)
    assert status == 201, body
    return dict(body)


async def test_a_typed_amount_and_account_move_no_money(dispute_stack: StackFactory) -> None:
    """Staff type 10,000,000 đ and their own account for a 1,234,000 đ debit
    the ledger never booked: approved, the refund is refused naming both
    amounts, and nothing reaches the bank. Typed with the right amount, the
    money goes back to the account the bank's statement names, not theirs."""
    async with dispute_stack() as stack:
        who, number = await _begin(stack)
        transfer = await stack.admins["hnbank"].transfer(PAYER, 1_234_000, "NOP PHAT")
        ref = transfer["bank_ref"]
        opened = await _staff_complaint(stack, who["fin"], number, 10_000_000, ref)
        approval_id = await _request(stack, who["fin"], opened["id"], "refund")
        status, body = await _decide(stack, who["appr"], approval_id, "approve")
        assert status == 200, body
        outcome = await _outcome(stack, opened["id"])
        assert outcome.outcome == dt.Resolution.FAILED, outcome
        assert "10000000" in outcome.detail, outcome.detail
        assert "1234000" in outcome.detail, outcome.detail
        assert await stack.bank_movements("hnbank", "refund") == []
        dispute = await _dispute(stack, who["fin"], opened["id"])
        assert dispute["status"] == "open"
        # The bank's record, found by the workflow, is kept with the dispute.
        assert dispute["evidence"]["bank"]["debit"]["amount_vnd"] == 1_234_000
        # Asked again, the request itself is refused now, naming both amounts.
        path = f"/api/v1/disputes/{opened['id']}/resolutions"
        again = {"action": "refund", "reason": "hoàn tiền"}
        status, body = await _call(stack, "POST", path, who["fin2"], json=again)
        assert (status, body["error"]["code"]) == (409, "bank_amount_differs"), body
        assert "10000000" in body["error"]["message"]
        assert "1234000" in body["error"]["message"]
        reject = {"action": "reject", "reason": "số tiền sai"}
        status, body = await _call(stack, "POST", path, who["fin"], json=reject)
        assert status == 200, body

        # The right amount, still with the staff member's account typed.
        second = await _staff_complaint(stack, who["fin"], number, 1_234_000, ref)
        approval_id = await _request(stack, who["fin"], second["id"], "refund")
        await _decide(stack, who["appr"], approval_id, "approve")
        assert (await _outcome(stack, second["id"])).outcome == dt.Resolution.REFUNDED
        [refund] = await stack.bank_movements("hnbank", "refund")
        assert (refund["amount_vnd"], refund["counterparty"]) == (1_234_000, PAYER)
        await _assert_books_and_audit(stack.engine)


def _bank_requests(bank: str) -> float:
    """Requests this process sent to ``bank``, whatever the operation and
    outcome (``bank_request_duration_seconds``, counted by every adapter)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "bank_request_duration_seconds"
        for sample in metric.samples
        if sample.name.endswith("_count") and sample.labels.get("bank") == bank
    )


async def test_reading_a_dispute_never_calls_the_bank(dispute_stack: StackFactory) -> None:
    async with dispute_stack(evidence_bank_timeout_seconds=2.0) as stack:
        who, number = await _begin(stack)
        bank = "sgbank"
        _status, started = await stack.pay(number, bank)
        await stack.wait_payment(started["payment_id"], {"succeeded"})
        opened = await _open(stack, who["fin"], number, bank, FINE_VND, None)
        gathered = opened["evidence"]["bank"]
        assert (gathered["reachable"], gathered["checks"][0]["outcome"]) == (True, "succeeded")
        await stack.admins[bank].add_fault("link_down", seconds=60)
        asked = _bank_requests(bank)
        for _ in range(3):
            dispute = await _dispute(stack, who["fin"], opened["id"])
            # The bank's side as gathered when the dispute was opened.
            assert dispute["evidence"]["bank"] == gathered
        assert _bank_requests(bank) == asked
        # Asked on purpose, the bank's state now is gathered and kept.
        status, body = await _call(
            stack, "POST", f"/api/v1/disputes/{opened['id']}/evidence/refresh", who["fin"]
        )
        assert status == 200, body
        assert body["evidence"]["bank"]["reachable"] is False
        assert _bank_requests(bank) > asked
        dispute = await _dispute(stack, who["fin"], opened["id"])
        assert dispute["evidence"]["bank"] == body["evidence"]["bank"]
