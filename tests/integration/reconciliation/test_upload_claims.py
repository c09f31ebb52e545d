"""An uploaded statement is a claim, not the bank's word (issue 15).

A person with a finance token uploads a two-line CSV naming an unpaid fine's
decision number and amount, the second line paying it "again" from an
account of theirs. Nothing moves: no receipt, no refund at the bank, no
journal entry; both lines wait as discrepancies for the bank's confirmation,
and the upload is in the audit log with its uploader and the file's SHA-256.
A line uploaded with the bank reference of a real debit does not hide the
bank's own line: the statement fetched from the bank still loads it, and it
pays the fine.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bank_adapters.simulators.render import SimLine, render_csv
from tests.integration.reconciliation.conftest import ReconStack
from tests.support.api import make_token
from tests.support.stack import PAYER, eventually

ATTACKER_ACCOUNT = "990011223344"
FINE_VND = 1_234_000


def _csv(lines: list[tuple[str, int, str, str]]) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return render_csv(
        [SimLine(ref, at, amount, "C", payer, note) for ref, amount, payer, note in lines]
    )


async def _upload(stack: ReconStack, data: bytes, token: str) -> dict[str, Any]:
    status, body = await stack.saga.call(
        "POST",
        "/api/v1/statements",
        params={"bank": "hnbank", "format": "csv", "statement_date": stack.today.isoformat()},
        data=data,
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"},
    )
    assert status == 202, body
    return dict(body)


async def _finished(client: Client, workflow_id: str) -> None:
    """Wait for a workflow to end, if it was ever started."""
    try:
        await client.get_workflow_handle(workflow_id).result()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


async def _rows(stack: ReconStack, sql: str, **params: Any) -> list[Any]:
    async with stack.saga.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def _count(stack: ReconStack, sql: str, **params: Any) -> int:
    [(count,)] = await _rows(stack, sql, **params)
    return int(count)


async def _act(stack: ReconStack, discrepancy_id: int, token: str, **body: Any) -> Any:
    return await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{discrepancy_id}/actions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_fabricated_upload_moves_no_money_and_issues_no_receipt(
    recon_stack: ReconStack,
) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(FINE_VND)
    uploader = await make_token(stack.saga.engine, "finance", "finance-uploader")
    content = f"NOP PHAT {number.replace('/', ' ')}"
    data = _csv(
        [
            ("FAKE000001", FINE_VND, PAYER, content),
            ("FAKE000002", FINE_VND, ATTACKER_ACCOUNT, content),
        ]
    )
    started = await _upload(stack, data, uploader)
    run = await stack.wait_run(started["reconciliation_id"])
    assert run["status"] == "completed", run
    for ref in ("FAKE000001", "FAKE000002"):
        await _finished(stack.saga.client, f"external-debit/hnbank/{ref}")

    fine = await stack.saga.fine(number)
    assert (fine["status"], fine["receipt"]) == ("unpaid", None)
    assert await _count(stack, "SELECT count(*) FROM receipts") == 0
    assert await stack.saga.bank_movements("hnbank", "refund") == []
    assert await _count(stack, "SELECT count(*) FROM journal_entries") == 0
    assert await _count(stack, "SELECT count(*) FROM payments") == 0
    status, page = await stack.saga.call(
        "GET", "/api/v1/discrepancies", params={"status": "open", "kind": "unconfirmed"}
    )
    assert status == 200, page
    waiting = sorted(page["items"], key=lambda d: str(d["bank_ref"]))
    assert [(d["bank_ref"], d["amount_vnd"]) for d in waiting] == [
        ("FAKE000001", FINE_VND),
        ("FAKE000002", FINE_VND),
    ]
    assert [d["detail"]["would_be"] for d in waiting] == ["healed", "duplicate"]
    assert all("request_refund" not in d["actions"] for d in waiting)
    audited = await _rows(
        stack, "SELECT actor, detail FROM audit_log WHERE action = 'statement.uploaded'"
    )
    assert [(a.actor, a.detail["content_sha256"]) for a in audited] == [
        ("finance-uploader", hashlib.sha256(data).hexdigest())
    ]
    assert audited[0].detail["reconciliation_id"] == started["reconciliation_id"]


async def test_a_fake_line_does_not_hide_the_banks_own_line(recon_stack: ReconStack) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(700_000)
    # The citizen's own transfer: the bank's line, not yet reconciled.
    real = await stack.saga.admins["hnbank"].transfer(PAYER, 700_000, f"NOP PHAT {number}")
    # Someone uploads a line under the same bank reference, saying otherwise.
    uploader = await make_token(stack.saga.engine, "finance", "finance-uploader")
    fake = _csv([(real["bank_ref"], 1_000, ATTACKER_ACCOUNT, "CHUYEN TIEN")])
    started = await _upload(stack, fake, uploader)
    await stack.wait_run(started["reconciliation_id"])
    _status, page = await stack.saga.call("GET", "/api/v1/discrepancies")
    [claim] = page["items"]
    assert claim["actions"] == ["confirm_with_bank", "request_manual_match", "dismiss"]

    # Finance asks the bank: its own statement of the day is reconciled.
    status, body = await _act(
        stack, claim["id"], uploader, action="confirm_with_bank", reason="hỏi ngân hàng"
    )
    assert status == 202, body
    run = await stack.wait_run(body["reconciliation"]["reconciliation_id"])
    assert (run["status"], run["source"]) == ("completed", "fetch"), run
    paid = await eventually(lambda: stack.receipted(number), 60, "the bank's line to pay the fine")
    assert paid["payments"][0]["amount_vnd"] == 700_000
    rows = await _rows(
        stack,
        "SELECT amount_vnd, class, uploaded FROM statement_lines"
        " WHERE bank_ref = :ref ORDER BY uploaded",
        ref=real["bank_ref"],
    )
    held = await _count(stack, "SELECT count(*) FROM journal_entries WHERE kind = 'suspense'")
    assert [tuple(r) for r in rows] == [
        (700_000, "healed", False),
        (1_000, "unconfirmed", True),
    ]
    assert held == 0
    _status, claim = await stack.saga.call("GET", f"/api/v1/discrepancies/{claim['id']}")
    assert (claim["status"], claim["resolved_by"]) == ("resolved", "system:reconciliation")


async def test_a_claim_is_matched_only_on_someone_elses_approval(recon_stack: ReconStack) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(450_000)
    engine = stack.saga.engine
    uploader = await make_token(engine, "admin", "admin-uploader")
    colleague = await make_token(engine, "finance", "finance-colleague")
    data = _csv([("PAPER00001", 450_000, ATTACKER_ACCOUNT, "nop phat xe 29A12345")])
    started = await _upload(stack, data, uploader)
    await stack.wait_run(started["reconciliation_id"])
    _status, page = await stack.saga.call("GET", "/api/v1/discrepancies")
    [claim] = page["items"]
    assert (claim["kind"], claim["detail"]["would_be"]) == ("unconfirmed", "unknown")
    reason = "giấy báo có của ngân hàng, bản giấy"
    # Not refunded on a file's word, whatever account is typed.
    for payee in (None, ATTACKER_ACCOUNT):
        status, body = await _act(
            stack, claim["id"], colleague, action="request_refund", reason=reason,
            **({"payee_account": payee} if payee else {}),
        )  # fmt: skip
        assert (status, body["error"]["code"]) == (409, "discrepancy_action_refused"), body
    status, body = await _act(
        stack, claim["id"], colleague, action="request_manual_match", reason=reason,
        decision_number=number,
    )  # fmt: skip
    assert status == 202, body
    approval = body["approval"]
    assert (await stack.saga.fine(number))["status"] == "unpaid"
    # The person who uploaded the line may not approve it (an admin either).
    status, refused = await stack.saga.call(
        "POST",
        f"/api/v1/approvals/{approval['id']}/approve",
        json={},
        headers={"Authorization": f"Bearer {uploader}"},
    )
    assert (status, refused["error"]["code"]) == (403, "same_approver"), refused
    approver = await make_token(engine, "approver", "approver-3")
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/approvals/{approval['id']}/approve",
        json={"reason": "đã đối chiếu giấy báo có"},
        headers={"Authorization": f"Bearer {approver}"},
    )
    assert status == 200, body
    await eventually(lambda: stack.receipted(number), 60, "the approved claim to pay")
    [payment] = await _rows(stack, "SELECT amount_vnd, bank_ref, payer_account FROM payments")
    # The file's account is never where money could go back to.
    assert tuple(payment) == (450_000, "PAPER00001", "unknown")
    assert await stack.saga.bank_movements("hnbank") == []
    # Another uploaded line for the now paid fine: matching it would make a
    # second payment to send back; refused, as a refund of it would be.
    again = await _upload(stack, _csv([("PAPER00002", 450_000, PAYER, "nop lai")]), uploader)
    await stack.wait_run(again["reconciliation_id"])
    _status, page = await stack.saga.call(
        "GET", "/api/v1/discrepancies", params={"status": "open", "kind": "unconfirmed"}
    )
    [second] = page["items"]
    status, body = await _act(
        stack, second["id"], colleague, action="request_manual_match", reason=reason,
        decision_number=number,
    )  # fmt: skip
    assert (status, body["error"]["code"]) == (409, "discrepancy_action_refused"), body
