"""Maker-checker approvals on real PostgreSQL: idempotent requests, the
requester can never decide, decisions are final, everything is audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core import approvals as ap
from ledger.core.audit import audit_trail, verify_audit_chain
from ledger.core.errors import ValidationError

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


async def _request(engine: AsyncEngine, subject: str = "7", by: str = "fin-a") -> ap.Approval:
    async with engine.begin() as conn:
        return await ap.request_approval(
            conn,
            "refund",
            "discrepancy",
            subject,
            {"amount_vnd": 800_000, "bank_ref": "R1"},
            "duplicate debit on the statement",
            by,
            NOW,
        )


async def test_request_is_idempotent_per_open_subject(engine: AsyncEngine) -> None:
    first = await _request(engine)
    again = await _request(engine, by="fin-b")
    assert again.id == first.id
    assert again.requested_by == "fin-a"
    other = await _request(engine, subject="8")
    assert other.id != first.id
    concurrent = await asyncio.gather(*(_request(engine, subject="9") for _ in range(5)))
    assert len({a.id for a in concurrent}) == 1
    async with engine.connect() as conn:
        pending = await ap.list_approvals(conn, status="pending")
    assert [a.id for a in pending] == sorted(a.id for a in pending)
    assert len(pending) == 3


async def test_the_requester_can_never_decide(engine: AsyncEngine) -> None:
    approval = await _request(engine)
    with pytest.raises(ap.SameApproverError):
        async with engine.begin() as conn:
            await ap.decide(conn, approval.id, True, "fin-a", None, NOW)
    async with engine.connect() as conn:
        assert (await ap.get_approval(conn, approval.id)).status == "pending"
    # The database refuses it too, whatever the code does.
    with pytest.raises(DBAPIError, match="approvals_four_eyes"):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE approvals SET status = 'approved', decided_by = requested_by, "
                    "decided_at = now() WHERE id = :id"
                ),
                {"id": approval.id},
            )


async def test_decisions_are_final_and_audited(engine: AsyncEngine) -> None:
    approval = await _request(engine)
    async with engine.begin() as conn:
        with pytest.raises(ValidationError, match="reason"):
            await ap.decide(conn, approval.id, False, "boss", "  ", NOW)
    async with engine.begin() as conn:
        decided = await ap.decide(conn, approval.id, True, "boss", "checked", NOW)
    assert (decided.status, decided.decided_by) == ("approved", "boss")
    for approve in (True, False):
        with pytest.raises(ap.ApprovalNotPendingError):
            async with engine.begin() as conn:
                await ap.decide(conn, approval.id, approve, "boss-2", "again", NOW)
    async with engine.begin() as conn:
        done = await ap.mark_executed(conn, approval.id, {"refund_ref": "RF1"}, NOW, "system:x")
        again = await ap.mark_executed(conn, approval.id, {"refund_ref": "RF1"}, NOW, "system:x")
    assert done.status == again.status == "executed"
    # A new request for the same subject is possible once the old one closed.
    assert (await _request(engine)).id != approval.id
    async with engine.connect() as conn:
        trail = await audit_trail(conn, [("approval", str(approval.id))])
        report = await verify_audit_chain(conn)
    assert [(e.action, e.actor) for e in trail] == [
        ("approval.requested", "fin-a"),
        ("approval.approved", "boss"),
        ("approval.executed", "system:x"),
    ]
    assert report.ok


async def test_expiry_keeps_a_decision_made_meanwhile(engine: AsyncEngine) -> None:
    first = await _request(engine, subject="1")
    second = await _request(engine, subject="2")
    async with engine.begin() as conn:
        await ap.decide(conn, second.id, False, "boss", "not a duplicate", NOW)
    later = NOW + timedelta(days=3)
    async with engine.begin() as conn:
        expired = await ap.expire(conn, first.id, later)
        kept = await ap.expire(conn, second.id, later)
    assert expired.status == "expired"
    assert kept.status == "rejected"
    with pytest.raises(ap.ApprovalNotPendingError):
        async with engine.begin() as conn:
            await ap.decide(conn, first.id, True, "boss", None, later)


async def test_request_validation(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        with pytest.raises(ValidationError, match="kind"):
            await ap.request_approval(conn, "payout", "x", "1", {}, "why", "a", NOW)
        with pytest.raises(ValidationError, match="reason"):
            await ap.request_approval(conn, "refund", "x", "1", {}, "", "a", NOW)
        with pytest.raises(ValidationError, match="payload"):
            await ap.request_approval(conn, "refund", "x", "1", {"v": 1.5}, "why", "a", NOW)
        with pytest.raises(ValidationError, match="limit"):
            await ap.list_approvals(conn, limit=501)
