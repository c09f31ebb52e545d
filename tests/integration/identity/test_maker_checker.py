"""Maker-checker compares people, not tokens: each attack tried over the
real API, refused with nothing written.

``test_one_person_with_two_tokens_cannot_approve_own_request`` was written
first, against the code before staff identity (tokens named ``alice-laptop``
and ``alice-phone``, two names for one person): there the second token
approved the first's refund (200, ``decided_by: alice-phone``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core import approvals as ap
from ledger.core.actors import PersonRequiredError
from tests.integration.disputes.test_disputes_api import COMPLAINT, FINE
from tests.integration.identity.conftest import PASSWORD, Api, call, login
from tests.support.api import make_service_token, make_token, make_user
from tests.support.db import value

REFUND = {"action": "refund", "reason": "debited twice"}


async def _refund_request(api: Api, engine: AsyncEngine, token: str) -> int:
    """A fine (registered by the portal), a dispute about it and a refund
    request by ``token``'s owner: the approval's id."""
    portal = await make_token(engine, "portal", "citizen-portal")
    status, body = await call(api, "POST", "/api/v1/fines", portal, json=FINE)
    assert status in (200, 201), body
    status, dispute = await call(api, "POST", "/api/v1/disputes", token, json=COMPLAINT)
    assert status == 201, dispute
    path = f"/api/v1/disputes/{dispute['id']}/resolutions"
    status, body = await call(api, "POST", path, token, json=REFUND)
    assert status == 202, body
    return int(body["approval"]["id"])


async def _audit_rows(engine: AsyncEngine) -> int:
    return int(await value(engine, "SELECT count(*) FROM audit_log"))


async def _assert_refused(
    api: Api, engine: AsyncEngine, approval_id: int, token: str, code: str, **kw: Any
) -> None:
    """Both decisions refused with ``code``; the approval still pending and
    not one audit row more."""
    before = await _audit_rows(engine)
    for verb in ("approve", "reject"):
        path = f"/api/v1/approvals/{approval_id}/{verb}"
        status, body = await call(api, "POST", path, token, json={"reason": "ok"}, **kw)
        assert (status, body["error"]["code"]) == (403, code), body
    assert await _audit_rows(engine) == before
    status_now = await value(engine, "SELECT status FROM approvals WHERE id = :i", i=approval_id)
    assert status_now == "pending"


async def test_one_person_with_two_tokens_cannot_approve_own_request(
    api: Api, engine: AsyncEngine
) -> None:
    laptop = await make_token(engine, "admin", "alice")
    phone = await make_token(engine, "admin", "alice")
    approval_id = await _refund_request(api, engine, laptop)
    await _assert_refused(api, engine, approval_id, phone, "same_approver")


async def test_a_login_and_an_api_token_of_one_person_are_one_person(
    api: Api, engine: AsyncEngine
) -> None:
    await make_user(engine, "carol", "admin", PASSWORD)
    session = await login(api, "carol")
    approval_id = await _refund_request(api, engine, session)
    api_token = await make_token(engine, "admin", "carol")
    await _assert_refused(api, engine, approval_id, api_token, "same_approver")
    # A second person decides; the first stays the requester.
    status, body = await call(
        api,
        "POST",
        f"/api/v1/approvals/{approval_id}/approve",
        await make_token(engine, "approver", "dave"),
    )
    assert (status, body["requested_by"], body["decided_by"]) == (200, "carol", "dave"), body


async def test_two_admin_tokens_of_one_admin_are_one_admin(api: Api, engine: AsyncEngine) -> None:
    first = await make_token(engine, "admin", "root-admin")
    approval_id = await _refund_request(api, engine, first)
    for _ in range(2):
        await _assert_refused(
            api,
            engine,
            approval_id,
            await make_token(engine, "admin", "root-admin"),
            "same_approver",
        )


async def test_a_service_account_never_decides_nor_requests(api: Api, engine: AsyncEngine) -> None:
    portal = await make_token(engine, "portal", "citizen-portal")
    approval_id = await _refund_request(api, engine, await make_token(engine, "finance", "erin"))
    for verb in ("approve", "reject"):
        status, body = await call(api, "POST", f"/api/v1/approvals/{approval_id}/{verb}", portal)
        assert (status, body["error"]["code"]) == (403, "forbidden"), body
    # A service holding finance's role still may not decide a dispute.
    finance_service = await make_service_token(engine, "recon-robot", "finance")
    dispute_id = await value(engine, "SELECT id FROM disputes ORDER BY id LIMIT 1")
    before = await _audit_rows(engine)
    status, body = await call(
        api,
        "POST",
        f"/api/v1/disputes/{dispute_id}/resolutions",
        finance_service,
        json={"action": "reject", "reason": "no debit"},
    )
    assert (status, body["error"]["code"]) == (403, "person_required"), body
    assert await _audit_rows(engine) == before


async def test_the_ledger_refuses_a_non_person_whatever_the_caller(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        approval = await ap.request_approval(conn, "refund", "x", "1", {}, "why", "frank", now)
    for actor in ("service:portal", "system:timeout", "cli:root", "cli", "Frank", "f"):
        async with engine.begin() as conn:
            try:
                await ap.decide(conn, approval.id, True, actor, None, now)
            except PersonRequiredError:
                pass
            else:
                raise AssertionError(f"{actor!r} decided")
        async with engine.begin() as conn:
            try:
                await ap.request_approval(conn, "refund", "x", "2", {}, "why", actor, now)
            except PersonRequiredError:
                pass
            else:
                raise AssertionError(f"{actor!r} requested")


async def test_a_refused_self_decision_checks_its_reason_first_and_writes_nothing(
    api: Api, engine: AsyncEngine
) -> None:
    token = await make_token(engine, "admin", "grace")
    approval_id = await _refund_request(api, engine, token)
    before = await _audit_rows(engine)
    for reason in ("nul\u0000byte", "x" * 2001, "bell\u0007", "x" * 1_000_000):
        path = f"/api/v1/approvals/{approval_id}/reject"
        status, body = await call(api, "POST", path, token, json={"reason": reason})
        assert (status, body["error"]["field"]) == (400, "reason"), body
    await _assert_refused(api, engine, approval_id, token, "same_approver")
    assert await _audit_rows(engine) == before


async def test_a_password_an_admin_set_cannot_approve_that_admins_request(
    api: Api, engine: AsyncEngine
) -> None:
    """An admin resets a colleague's password and logs in as them: that
    login is vouched for by the admin, who asked, so it may not decide."""
    admin = await make_token(engine, "admin", "heidi")
    await make_user(engine, "ivan", "approver", PASSWORD)
    approval_id = await _refund_request(api, engine, admin)
    status, body = await call(
        api, "POST", "/api/v1/users/ivan/password", admin, json={"password": "heidi knows this one"}
    )
    assert status == 200, body
    as_ivan = await login(api, "ivan", "heidi knows this one")
    await _assert_refused(api, engine, approval_id, as_ivan, "same_approver")
    # Once ivan chooses his own password, his decisions are his.
    status, body = await call(
        api,
        "POST",
        "/api/v1/auth/password",
        as_ivan,
        json={"current_password": "heidi knows this one", "new_password": "ivan's own secret"},
    )
    assert status == 200, body
    mine = await login(api, "ivan", "ivan's own secret")
    status, body = await call(api, "POST", f"/api/v1/approvals/{approval_id}/approve", mine)
    assert (status, body["decided_by"]) == (200, "ivan"), body
