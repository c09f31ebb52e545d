"""Finance acts on discrepancies with a second person's approval: a refund of
unidentified money goes back to the payer through the bank and out of
suspense; a manual match books it as the fine's payment with a receipt; a
rejection moves nothing."""

from __future__ import annotations

from typing import Any

from ledger.core.postings import balances, posting_sums
from tests.integration.reconciliation.conftest import ReconStack
from tests.support.api import make_token
from tests.support.stack import PAYER, eventually


async def _one_unknown(stack: ReconStack, amount_vnd: int, content: str) -> dict[str, Any]:
    await stack.saga.admins["hnbank"].transfer(PAYER, amount_vnd, content)
    run = await stack.reconcile("hnbank")
    assert run["unknown"] == 1, run
    status, page = await stack.saga.call(
        "GET", "/api/v1/discrepancies", params={"kind": "unknown", "status": "open"}
    )
    assert status == 200
    [found] = page["items"]
    return dict(found)


async def _decide(stack: ReconStack, approval_id: int, verb: str, reason: str = "") -> None:
    approver = await make_token(stack.saga.engine, "approver", f"approver-{approval_id}")
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/approvals/{approval_id}/{verb}",
        json={"reason": reason} if reason else {},
        headers={"Authorization": f"Bearer {approver}"},
    )
    assert status == 200, body


async def _discrepancy(stack: ReconStack, discrepancy_id: int) -> dict[str, Any]:
    status, body = await stack.saga.call("GET", f"/api/v1/discrepancies/{discrepancy_id}")
    assert status == 200
    return dict(body)


async def _suspense(stack: ReconStack) -> int:
    async with stack.saga.engine.connect() as conn:
        held = await balances(conn, ["suspense"])
        assert await balances(conn) == await posting_sums(conn)
    return held.get("suspense", 0)


async def test_an_approved_refund_sends_the_money_back_and_out_of_suspense(
    recon_stack: ReconStack,
) -> None:
    stack = recon_stack
    found = await _one_unknown(stack, 123_000, "chuyen tien nham")
    assert await _suspense(stack) == -123_000
    # Money goes back only to the account the bank's statement names.
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{found['id']}/actions",
        json={"action": "request_refund", "reason": "hoàn", "payee_account": "990011223344"},
    )
    assert (status, body["error"]["field"]) == (400, "payee_account"), body
    assert PAYER in body["error"]["message"]
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{found['id']}/actions",
        json={"action": "request_refund", "reason": "người nộp chuyển nhầm, xin hoàn"},
    )
    assert status == 202, body
    approval = body["approval"]
    assert (approval["kind"], approval["status"], approval["workflow_started"]) == (
        "refund",
        "pending",
        True,
    )
    # Nothing moves before a second person approves.
    assert await stack.saga.bank_movements("hnbank", "refund") == []
    await _decide(stack, approval["id"], "approve")

    async def resolved() -> dict[str, Any] | None:
        item = await _discrepancy(stack, found["id"])
        return item if item["status"] == "resolved" else None

    item = await eventually(resolved, 60, "the refund to be done")
    assert item["resolution"].startswith(f"refunded to {PAYER}")
    [refund] = await stack.saga.bank_movements("hnbank", "refund")
    assert (refund["amount_vnd"], refund["counterparty"]) == (123_000, PAYER)
    assert await _suspense(stack) == 0
    # The refund leaves the account on the next statement: ours, matched.
    run = await stack.reconcile("hnbank")
    assert (run["lines"], run["matched"], run["discrepancies_open"]) == (2, 1, 0), run


async def test_an_approved_manual_match_pays_the_fine_with_a_receipt(
    recon_stack: ReconStack,
) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(480_000)
    # The citizen wrote their plate instead of the decision number.
    found = await _one_unknown(stack, 480_000, "nop phat xe 29A12345")
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{found['id']}/actions",
        json={"action": "request_manual_match", "reason": "xác minh", "decision_number": "x"},
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{found['id']}/actions",
        json={
            "action": "request_manual_match",
            "reason": "người nộp gọi điện xác nhận số quyết định",
            "decision_number": number,
        },
    )
    assert status == 202, body
    await _decide(stack, body["approval"]["id"], "approve")

    await eventually(lambda: stack.receipted(number), 60, "the fine to be paid")
    item = await _discrepancy(stack, found["id"])
    assert (item["status"], item["actions"]) == ("resolved", [])
    assert await _suspense(stack) == 0
    audited = [
        action for action, about in await stack.discrepancy_audit() if about == str(found["id"])
    ]
    assert audited == ["discrepancy.manual_match_done"]


async def test_a_rejected_request_moves_nothing(recon_stack: ReconStack) -> None:
    stack = recon_stack
    found = await _one_unknown(stack, 99_000, "abc")
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{found['id']}/actions",
        json={"action": "request_refund", "reason": "hoàn tiền"},
    )
    assert status == 202, body
    # The requester may not approve their own request.
    status, refused = await stack.saga.call(
        "POST", f"/api/v1/approvals/{body['approval']['id']}/approve", json={}
    )
    assert status == 403, refused
    await _decide(stack, body["approval"]["id"], "reject", "chưa đủ chứng từ")
    handle = stack.saga.client.get_workflow_handle(body["approval"]["workflow_id"])
    result = await handle.result()
    assert result["outcome"] == "rejected"
    item = await _discrepancy(stack, found["id"])
    assert item["status"] == "open"
    assert await stack.saga.bank_movements("hnbank", "refund") == []
    assert await _suspense(stack) == -99_000
