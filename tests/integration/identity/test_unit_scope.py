"""Roles scoped to issuing units: an officer or finance user with units
sees only their units' fines, payments, receipts and disputes; another
unit's are not found (404, the same answer as a missing one, so nothing
leaks) and nothing is written for them. Unscoped users and admins see all.
Reissuing a receipt is a write of its own permission, audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.fines import missing_fine_message
from ledger.receipts.signing import ReceiptSigner
from tests.integration.identity.conftest import Api, call
from tests.integration.receipts.test_receipts_db import add_payment, issue
from tests.support.api import make_token
from tests.support.db import rows, value
from tests.support.ledger import make_fine

OURS = "Đội CSGT số 1"
THEIRS = "Đội CSGT số 9"


@dataclass(frozen=True)
class Paid:
    decision_number: str
    payment_id: str
    receipt: str  # series/number, path-quoted


async def _paid(engine: AsyncEngine, unit: str, number: str) -> Paid:
    """A fine of ``unit``, paid, with its receipt."""
    fine = await make_fine(engine, number, 1_500_000, unit)
    async with engine.begin() as conn:
        payment_id = await add_payment(conn, fine.id)
    receipt = await issue(engine, payment_id, ReceiptSigner.generate())
    return Paid(number, str(payment_id), f"{quote(receipt.series, safe='')}/{receipt.number}")


@pytest.fixture
async def units(engine: AsyncEngine) -> dict[str, Paid]:
    return {
        OURS: await _paid(engine, OURS, "111/QĐ-XPHC"),
        THEIRS: await _paid(engine, THEIRS, "999/QĐ-XPHC"),
    }


def _fine(number: str) -> str:
    return f"/api/v1/fines/{quote(number, safe='')}"


async def test_a_scoped_officer_sees_only_their_units(
    api: Api, engine: AsyncEngine, units: dict[str, Paid]
) -> None:
    scoped = await make_token(engine, "officer", "scoped-officer", units=(OURS,))
    ours, theirs = units[OURS], units[THEIRS]
    assert (await call(api, "GET", _fine(ours.decision_number), scoped))[0] == 200
    status, body = await call(api, "GET", _fine(theirs.decision_number), scoped)
    assert (status, body["error"]) == (
        404,
        {"code": "not_found", "message": missing_fine_message(theirs.decision_number)},
    )
    status, absent = await call(api, "GET", _fine("99999/QĐ-XPHC"), scoped)
    assert (status, absent["error"]["code"]) == (404, "not_found")
    assert (await call(api, "GET", f"/api/v1/payments/{ours.payment_id}", scoped))[0] == 200
    status, body = await call(api, "GET", f"/api/v1/payments/{theirs.payment_id}", scoped)
    assert (status, body["error"]["message"]) == (404, f"no payment {theirs.payment_id}")
    for suffix in ("", "/pdf"):
        path = f"/api/v1/receipts/{ours.receipt}{suffix}"
        assert (await api.get(path, headers={"Authorization": f"Bearer {scoped}"})).status == 200
        status, body = await call(api, "GET", f"/api/v1/receipts/{theirs.receipt}{suffix}", scoped)
        assert (status, body["error"]["code"]) == (404, "not_found")
    # Another unit's receipt is not reprinted: no copy counted, no audit row.
    copies = "SELECT copies FROM receipts ORDER BY id"
    before = [r.copies for r in await rows(engine, copies)]
    status, _ = await call(api, "POST", f"/api/v1/receipts/{theirs.receipt}/reissue", scoped)
    assert status == 404
    assert [r.copies for r in await rows(engine, copies)] == before
    assert (
        await value(engine, "SELECT count(*) FROM audit_log WHERE action = 'receipt.reissued'") == 0
    )


@pytest.mark.parametrize(("role", "name"), [("officer", "any-officer"), ("admin", "root")])
async def test_unscoped_users_and_admins_see_every_unit(
    api: Api, engine: AsyncEngine, units: dict[str, Paid], role: str, name: str
) -> None:
    token = await make_token(engine, role, name)
    for paid in units.values():
        assert (await call(api, "GET", _fine(paid.decision_number), token))[0] == 200
        assert (await call(api, "GET", f"/api/v1/receipts/{paid.receipt}", token))[0] == 200


def _complaint(paid: Paid) -> dict[str, Any]:
    return {
        "decision_number": paid.decision_number,
        "bank": "sgbank",
        "amount_vnd": 1_500_000,
        "occurred_at": "2026-03-01T09:30:00+07:00",
        "description": "bị trừ tiền hai lần",
    }


async def test_scoped_users_open_and_see_disputes_of_their_units_only(
    api: Api, engine: AsyncEngine, units: dict[str, Paid]
) -> None:
    officer = await make_token(engine, "officer", "unit-officer", units=(OURS,))
    finance = await make_token(engine, "finance", "unit-finance", units=(OURS,))
    admin = await make_token(engine, "admin", "root")
    status, body = await call(
        api, "POST", "/api/v1/disputes", officer, json=_complaint(units[THEIRS])
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert await value(engine, "SELECT count(*) FROM disputes") == 0
    status, ours = await call(
        api, "POST", "/api/v1/disputes", officer, json=_complaint(units[OURS])
    )
    assert status == 201, ours
    status, theirs = await call(
        api, "POST", "/api/v1/disputes", admin, json=_complaint(units[THEIRS])
    )
    assert status == 201, theirs
    status, listed = await call(api, "GET", "/api/v1/disputes", officer)
    assert [d["id"] for d in listed["disputes"]] == [ours["id"]]
    status, listed = await call(api, "GET", "/api/v1/disputes?limit=1", officer)
    assert ([d["id"] for d in listed["disputes"]], listed["next_after_id"]) == (
        [ours["id"]],
        ours["id"],
    )
    status, listed = await call(api, "GET", "/api/v1/disputes", admin)
    assert [d["id"] for d in listed["disputes"]] == [ours["id"], theirs["id"]]
    assert (await call(api, "GET", f"/api/v1/disputes/{theirs['id']}", officer))[0] == 404
    assert (await call(api, "GET", f"/api/v1/disputes/{ours['id']}", officer))[0] == 200
    path = f"/api/v1/disputes/{theirs['id']}/resolutions"
    status, _ = await call(api, "POST", path, finance, json={"action": "reject", "reason": "no"})
    assert status == 404
    assert (
        await value(engine, "SELECT status FROM disputes WHERE id = :i", i=theirs["id"]) == "open"
    )


async def test_reissue_needs_its_write_permission_and_is_audited(
    api: Api, engine: AsyncEngine, units: dict[str, Paid]
) -> None:
    path = f"/api/v1/receipts/{units[OURS].receipt}/reissue"
    for role in ("approver", "operator", "portal"):
        status, body = await call(api, "POST", path, await make_token(engine, role, f"a-{role}"))
        assert (status, body["error"]["code"]) == (403, "forbidden"), role
    officer = await make_token(engine, "officer", "counter-1")
    for copy in (2, 3):
        status, body = await call(api, "POST", path, officer)
        assert (status, body["copies"]) == (200, copy)
    trail = await rows(
        engine,
        "SELECT actor, subject_id, detail->>'copy' AS copy FROM audit_log"
        " WHERE action = 'receipt.reissued' ORDER BY id",
    )
    series_number = unquote(path.split("/receipts/")[1].removesuffix("/reissue"))
    assert [tuple(r) for r in trail] == [
        ("counter-1", series_number, "2"),
        ("counter-1", series_number, "3"),
    ]
