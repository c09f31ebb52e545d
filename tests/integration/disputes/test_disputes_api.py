"""Disputes and approvals over real HTTP against the real PostgreSQL, without
Temporal (the decision is recorded in the database either way; the workflow
side is in tests/integration/disputes/test_dispute_workflow.py).

Roles: no role does what its role does not allow; the requester of a money
movement can never approve it (403, even an admin); a decision is final (409).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from ledger.core.audit import verify_audit_chain
from reconciler.api.app import create_app
from reconciler.api.temporal_link import TemporalLink
from reconciler.devstack.ports import free_port
from reconciler.settings import Settings
from tests.support.api import make_token

NUMBER = "04321/QĐ-XPHC"
FINE: dict[str, Any] = {
    "decision_number": NUMBER,
    "amount_vnd": 800_000,
    "violator_name": "Trần Thị B",
    "plate": "30A-999.99",
    "issuing_unit": "Phòng CSGT Hà Nội",
    "violation": "Vượt đèn đỏ",
}
COMPLAINT: dict[str, Any] = {
    "decision_number": NUMBER,
    "bank": "sgbank",
    "amount_vnd": 800_000,
    "occurred_at": "2026-03-01T09:30:00+07:00",
    "bank_ref": "SG-REF-0001",
    "payer_account": "123456789",
    "description": "Tài khoản đã bị trừ tiền nhưng không có biên lai",
}
ROLES = ("portal", "officer", "finance", "approver", "operator", "admin")


class NoTemporal(TemporalLink):
    """Temporal is unavailable: the API records decisions all the same."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", "default")

    async def client(self) -> Client | None:
        return None


Api = TestClient[Any, Any]


@pytest.fixture
async def api(engine: AsyncEngine, db_url: str) -> AsyncIterator[Api]:
    # A bank nobody listens on: the evidence must say so, not fail.
    down = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        env="dev",
        database_url=db_url,
        banks={"sgbank": {"protocol": "rest", "url": down}},  # type: ignore[dict-item]
        evidence_bank_timeout_seconds=2.0,
    )
    app = create_app(settings, engine=engine, temporal=NoTemporal())
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def who(engine: AsyncEngine) -> dict[str, dict[str, str]]:
    names = [*ROLES, "finance-2", "approver-2", "admin-2"]
    tokens = {}
    for name in names:
        role = name.split("-")[0]
        tokens[name] = {"Authorization": f"Bearer {await make_token(engine, role, name)}"}
    return tokens


async def _json(api: Api, method: str, path: str, who: dict[str, str], **kw: Any) -> Any:
    resp = await api.request(method, path, headers=who, **kw)
    return resp.status, await resp.json()


async def _open(api: Api, who: dict[str, str], **changes: Any) -> dict[str, Any]:
    status, body = await _json(api, "POST", "/api/v1/disputes", who, json={**COMPLAINT, **changes})
    assert status == 201, body
    return dict(body)


async def _resolve(
    api: Api, dispute: dict[str, Any], who: dict[str, str], action: str, reason: str
) -> Any:
    """Ask for ``dispute``'s resolution by ``action``: (status, body)."""
    path = f"/api/v1/disputes/{dispute['id']}/resolutions"
    return await _json(api, "POST", path, who, json={"action": action, "reason": reason})


async def _both_decisions_refused(
    api: Api, approval_id: int, who: dict[str, str], status: int, code: str
) -> None:
    for verb in ("approve", "reject"):
        path = f"/api/v1/approvals/{approval_id}/{verb}"
        answer, body = await _json(api, "POST", path, who, json={"reason": "refused"})
        assert (answer, body["error"]["code"]) == (status, code), body


@pytest.fixture
async def fine(api: Api, who: dict[str, dict[str, str]]) -> None:
    status, body = await _json(api, "POST", "/api/v1/fines", who["admin"], json=FINE)
    assert status == 201, body


@pytest.mark.usefixtures("fine")
async def test_open_a_dispute_with_evidence_while_the_bank_is_down(
    api: Api, who: dict[str, dict[str, str]]
) -> None:
    body = await _open(api, who["officer"])
    assert body["status"] == "open"
    assert body["opened_by"] == "officer"
    assert body["occurred_at"] == "2026-03-01T02:30:00+00:00"
    evidence = body["evidence"]
    assert evidence["fine"] == {
        "decision_number": NUMBER,
        "amount_vnd": 800_000,
        "status": "unpaid",
    }
    assert evidence["payments"] == []
    assert evidence["bank"]["reachable"] is False
    assert "unreachable" in evidence["bank"]["note"]
    # The same debit cannot be disputed twice at once.
    status, again = await _json(api, "POST", "/api/v1/disputes", who["finance"], json=COMPLAINT)
    assert status == 409
    assert again["error"]["code"] == "dispute_state"


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"amount_vnd": 800_000.0}, "amount_vnd"),
    ({"amount_vnd": "800000"}, "amount_vnd"),
    ({"amount_vnd": True}, "amount_vnd"),
    ({"amount_vnd": 0}, "amount_vnd"),
    ({"occurred_at": "2026-03-01T09:30:00"}, "occurred_at"),
    ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
    ({"bank": "nobank"}, "bank"),
    ({"bank_ref": "bad ref!"}, "bank_ref"),
    ({"description": "x" * 2001}, "description"),
    ({"description": ""}, "description"),
    ({"surprise": 1}, "surprise"),
    ({"contact_phone": "12345"}, "contact_phone"),
    ({"contact_phone": "0912abc678"}, "contact_phone"),
    ({"contact_phone": "0" + "9" * 30}, "contact_phone"),
    ({"contact_phone": 912345678}, "contact_phone"),
    ({"contact_phone": "0912345678" + " " * 20}, "contact_phone"),
    ({"contact_email": "an@example.vn" + " " * 250}, "contact_email"),
    ({"contact_email": "an@localhost"}, "contact_email"),
    ({"contact_email": "a" * 250 + "@x.vn"}, "contact_email"),
    ({"contact_email": ["an@x.vn"]}, "contact_email"),
]


@pytest.mark.usefixtures("fine")
async def test_bad_input_is_a_400_naming_the_field(
    api: Api, who: dict[str, dict[str, str]], engine: AsyncEngine
) -> None:
    for change, field in BAD_INPUT:
        status, body = await _json(
            api, "POST", "/api/v1/disputes", who["finance"], json={**COMPLAINT, **change}
        )
        assert status == 400, (change, body)
        assert body["error"]["field"] == field, change
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM disputes"))).scalar_one()
    assert count == 0


@pytest.mark.usefixtures("fine")
async def test_the_citizens_contact_is_kept_out_of_the_audit_log(
    api: Api, who: dict[str, dict[str, str]], engine: AsyncEngine
) -> None:
    """The audit chain keeps what it holds for good: it records which kinds
    of contact were given, never the phone number or the email."""
    body = await _open(
        api, who["officer"], contact_phone="+84 912.345.678", contact_email=" an@example.vn "
    )
    assert (body["contact_phone"], body["contact_email"]) == ("+84912345678", "an@example.vn")
    status, read = await _json(api, "GET", f"/api/v1/disputes/{body['id']}", who["finance"])
    assert status == 200, read
    assert (read["contact_phone"], read["contact_email"]) == ("+84912345678", "an@example.vn")
    bare = await _open(api, who["finance"], bank_ref="SG-REF-0002", contact_phone="  ")
    assert (bare["contact_phone"], bare["contact_email"]) == (None, None)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT detail::text FROM audit_log WHERE action = 'dispute.opened' ORDER BY id"
                )
            )
        ).scalars()
        details = list(rows)
        everything = " ".join(
            (await conn.execute(text("SELECT detail::text FROM audit_log"))).scalars()
        )
    assert len(details) == 2, details
    assert '"contact": ["phone", "email"]' in details[0]
    assert '"contact": []' in details[1]
    for trace in ("912345678", "an@example.vn", "example"):
        assert trace not in everything


@pytest.mark.usefixtures("fine")
async def test_unknown_decision_number_is_404(api: Api, who: dict[str, dict[str, str]]) -> None:
    status, body = await _json(
        api,
        "POST",
        "/api/v1/disputes",
        who["finance"],
        json={**COMPLAINT, "decision_number": "99999/QĐ-XPHC"},
    )
    assert status == 404, body


@pytest.mark.usefixtures("fine")
async def test_roles(api: Api, who: dict[str, dict[str, str]]) -> None:
    for role in ("portal", "operator"):
        status, _ = await _json(api, "POST", "/api/v1/disputes", who[role], json=COMPLAINT)
        assert status == 403
        status, _ = await _json(api, "GET", "/api/v1/disputes", who[role])
        assert status == 403
    dispute = await _open(api, who["finance"])
    path = f"/api/v1/disputes/{dispute['id']}/resolutions"
    confirm = {"action": "confirm", "reason": "the bank statement shows the debit"}
    for role in ("officer", "approver", "portal", "operator"):
        status, _ = await _json(api, "POST", path, who[role], json=confirm)
        assert status == 403, role
    status, body = await _json(api, "POST", path, who["finance"], json=confirm)
    assert status == 202, body
    approval_id = body["approval"]["id"]
    assert body["dispute"]["status"] == "awaiting_approval"
    assert body["workflow_started"] is False
    for role in ("finance-2", "officer", "portal", "operator"):
        status, body = await _json(
            api, "POST", f"/api/v1/approvals/{approval_id}/approve", who[role]
        )
        assert status == 403, role
        assert body["error"]["code"] == "forbidden"
    status, listed = await _json(api, "GET", "/api/v1/approvals?status=pending", who["approver"])
    assert status == 200
    assert [a["id"] for a in listed["approvals"]] == [approval_id]
    status, _ = await _json(api, "GET", "/api/v1/approvals?limit=501", who["approver"])
    assert status == 400


@pytest.mark.usefixtures("fine")
async def test_maker_checker_same_person_is_403_even_for_admin(
    api: Api, who: dict[str, dict[str, str]], engine: AsyncEngine
) -> None:
    dispute = await _open(api, who["admin"], amount_vnd=500_000, payer_account="123456789")
    status, body = await _resolve(api, dispute, who["admin"], "refund", "wrong amount debited")
    assert status == 202, body
    approval_id = body["approval"]["id"]
    await _both_decisions_refused(api, approval_id, who["admin"], 403, "same_approver")
    status, body = await _json(api, "GET", f"/api/v1/approvals/{approval_id}", who["approver"])
    assert body["status"] == "pending"
    # Another admin may decide; then the decision is final.
    status, body = await _json(
        api, "POST", f"/api/v1/approvals/{approval_id}/approve", who["admin-2"]
    )
    assert status == 200, body
    assert (body["status"], body["decided_by"], body["workflow_signalled"]) == (
        "approved",
        "admin-2",
        False,
    )
    await _both_decisions_refused(api, approval_id, who["approver"], 409, "approval_not_pending")
    status, detail = await _json(api, "GET", f"/api/v1/disputes/{dispute['id']}", who["finance"])
    assert detail["status"] == "executing"
    actions = [(h["action"], h["actor"]) for h in detail["history"]]
    assert actions == [
        ("dispute.opened", "admin"),
        ("approval.requested", "admin"),
        ("dispute.resolution_requested", "admin"),
        # The two refused self-decisions wrote nothing.
        ("approval.approved", "admin-2"),
    ]
    async with engine.connect() as conn:
        assert (await verify_audit_chain(conn)).ok


@pytest.mark.usefixtures("fine")
async def test_rejections(api: Api, who: dict[str, dict[str, str]]) -> None:
    dispute = await _open(api, who["finance"])
    status, body = await _resolve(api, dispute, who["finance"], "confirm", "seen")
    approval_id = body["approval"]["id"]
    # Asking again while it waits is the same request.
    status, again = await _resolve(api, dispute, who["finance-2"], "confirm", "seen too")
    assert status == 202
    assert again["approval"]["id"] == approval_id
    status, body = await _json(
        api, "POST", f"/api/v1/approvals/{approval_id}/reject", who["approver"], json={}
    )
    assert status == 400
    assert body["error"]["field"] == "reason"
    status, body = await _json(
        api,
        "POST",
        f"/api/v1/approvals/{approval_id}/reject",
        who["approver"],
        json={"reason": "no such debit at the bank"},
    )
    assert status == 200, body
    status, body = await _json(api, "GET", f"/api/v1/disputes/{dispute['id']}", who["officer"])
    assert body["status"] == "open"
    # Finance closes it without money moving: a reason is required.
    path = f"/api/v1/disputes/{dispute['id']}/resolutions"
    status, body = await _json(api, "POST", path, who["finance"], json={"action": "reject"})
    assert status == 400
    status, body = await _resolve(api, dispute, who["finance"], "reject", "nothing was debited")
    assert status == 200, body
    assert body["dispute"]["status"] == "rejected"
    status, body = await _resolve(api, dispute, who["finance"], "confirm", "changed my mind")
    assert status == 409
    status, listed = await _json(api, "GET", "/api/v1/disputes?status=rejected", who["approver"])
    assert [d["id"] for d in listed["disputes"]] == [dispute["id"]]


@pytest.mark.usefixtures("fine")
async def test_confirm_needs_the_fines_amount_and_no_typed_payee(
    api: Api, who: dict[str, dict[str, str]]
) -> None:
    dispute = await _open(api, who["finance"], amount_vnd=500_000, payer_account=None)
    status, body = await _resolve(api, dispute, who["finance"], "confirm", "debited")
    assert status == 409
    assert "refund" in body["error"]["message"]
    # Whatever was typed (or not), money goes where the bank's record says:
    # the workflow finds it before anything moves.
    status, body = await _resolve(api, dispute, who["finance"], "refund", "wrong amount")
    assert status == 202, body
    assert (
        body["approval"]["payload"]["amount_vnd"],
        body["approval"]["payload"]["payer_account"],
    ) == (
        500_000,
        None,
    )


HOSTILE_NUMBERS = ("%C2%B2", "%EF%BC%91", "9" * 5000, "-1", "0x10", "%201", "%00")


async def test_hostile_ids_and_paging_are_a_400_naming_the_parameter(
    api: Api, who: dict[str, dict[str, str]]
) -> None:
    for raw in HOSTILE_NUMBERS:
        for path, field in (
            (f"/api/v1/disputes/{raw}", "dispute_id"),
            (f"/api/v1/approvals/{raw}", "approval_id"),
            (f"/api/v1/disputes?limit={raw}", "limit"),
            (f"/api/v1/approvals?after_id={raw}", "after_id"),
        ):
            status, body = await _json(api, "GET", path, who["admin"])
            assert status == 400, (path[:80], body)
            assert body["error"]["code"] == "invalid_input", path[:80]
            assert body["error"]["field"] == field, path[:80]
