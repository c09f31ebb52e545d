"""The finance pages of approvals and disputes: the requester never sees an
approve/reject form on their own request and a forged POST of theirs is
refused with nothing written; a second person decides through the form;
disputes with evidence, age and an overdue deadline; unit scope; stored
text escaped; a role that may not gets the 403 page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import disputes as ds
from reconciler.devstack.ports import free_port
from tests.integration.console.conftest import PASSWORD, Console, log_in
from tests.support.api import make_user
from tests.support.db import value
from tests.support.ledger import make_fine
from tests.support.receipts import UNIT

OTHER_UNIT = "Đội CSGT số 9"


@pytest.fixture
def console_overrides() -> dict[str, Any]:
    # No workflow service: a decision is recorded and its signal deferred
    # (the workflow re-reads the database), never sent to a stray server.
    return {"temporal_address": f"127.0.0.1:{free_port()}"}


HOSTILE = "<script>alert(1)</script>"


async def _dispute(
    engine: AsyncEngine,
    number: str,
    *,
    unit: str = UNIT,
    opened: datetime | None = None,
    refund_by: str | None = None,
) -> tuple[int, int | None]:
    """A fine of ``unit``, a dispute about it (opened at ``opened``) and, if
    ``refund_by``, their request to refund it: (dispute id, approval id)."""
    await make_fine(engine, number, 800_000, unit)
    now = opened or datetime.now(UTC)
    complaint = ds.DisputeInput(
        decision_number=number,
        bank="sgbank",
        amount_vnd=800_000,
        occurred_at=now - timedelta(hours=1),
        description=f"bị trừ tiền {HOSTILE}",
        bank_ref=f"SG-REF-{number[:5]}",
        payer_account="123456789",
        contact_phone="0912345678",
        contact_email=f"an{HOSTILE}@x.vn",
    )
    async with engine.begin() as conn:
        dispute = await ds.open_dispute(conn, complaint, "fin.an", now)
        if refund_by is None:
            return dispute.id, None
        _, approval = await ds.request_resolution(
            conn, dispute.id, "refund", "trừ tiền hai lần", refund_by, now
        )
    return dispute.id, approval.id


async def _state(engine: AsyncEngine, approval_id: int) -> tuple[str, int]:
    status = await value(engine, "SELECT status FROM approvals WHERE id = :i", i=approval_id)
    return str(status), int(await value(engine, "SELECT count(*) FROM audit_log"))


async def test_the_requester_never_sees_or_forges_a_decision(
    console: Console, engine: AsyncEngine
) -> None:
    await make_user(engine, "adm.requester", "admin", PASSWORD)
    _dispute_id, approval_id = await _dispute(engine, "01234/QĐ-XPHC", refund_by="adm.requester")
    assert approval_id is not None
    csrf = await log_in(console, "adm.requester")
    page = await (await console.get("/console/approvals")).text()
    assert f"Yêu cầu #{approval_id}" in page
    assert "Đây là yêu cầu của bạn" in page
    assert f"/console/approvals/{approval_id}/approve" not in page
    assert f"/console/approvals/{approval_id}/reject" not in page
    before = await _state(engine, approval_id)
    for verb in ("approve", "reject"):
        forged = await console.post(
            f"/console/approvals/{approval_id}/{verb}", data={"csrf": csrf, "reason": "tôi duyệt"}
        )
        assert forged.status == 403
        assert "không được phê duyệt" in await forged.text()
    assert await _state(engine, approval_id) == before == ("pending", before[1])


async def test_a_second_person_decides_through_the_form(
    console: Console, engine: AsyncEngine
) -> None:
    dispute_id, approval_id = await _dispute(engine, "01234/QĐ-XPHC", refund_by="fin.an")
    await make_user(engine, "duyet.binh", "approver", PASSWORD)
    csrf = await log_in(console, "duyet.binh")
    page = await (await console.get("/console/approvals")).text()
    assert f'action="/console/approvals/{approval_id}/approve"' in page
    assert "fin.an" in page
    assert "đã chờ" in page
    path = f"/console/approvals/{approval_id}/approve"
    # Without the form's token, or with another: refused, nothing changed.
    before = await _state(engine, approval_id)
    assert (await console.post(path, data={"reason": "ok"})).status == 403
    assert (await console.post(path, data={"csrf": "forged", "reason": "ok"})).status == 403
    assert await _state(engine, approval_id) == before
    done = await console.post(path, data={"csrf": csrf, "reason": "đã kiểm tra"})
    assert done.status == 200  # followed the 303 back to the inbox
    assert "Đã ghi nhận quyết định" in await done.text()
    decided = await value(
        engine, "SELECT status || ' ' || decided_by FROM approvals WHERE id = :i", i=approval_id
    )
    assert decided == "approved duyet.binh"
    status = await value(engine, "SELECT status FROM disputes WHERE id = :i", i=dispute_id)
    assert status == "executing"
    again = await console.post(path, data={"csrf": csrf, "reason": "lần nữa"})
    assert again.status == 409
    # The decision is in the audit log, found by its actor; the chain holds.
    audit = await (
        await console.get("/console/audit?actor=duyet.binh&action=approval.approved")
    ).text()
    assert f"approval {approval_id}" in audit
    assert "đã kiểm tra" in audit
    assert "<td>fin.an</td>" not in audit  # the requester's own rows are filtered out
    verified = await (await console.get("/console/audit/verification")).text()
    assert "Chuỗi nhật ký nguyên vẹn" in verified
    assert (await console.get("/console/audit?from=2026-13-01")).status == 400


async def test_disputes_with_age_overdue_deadline_and_escaped_text(
    console: Console, engine: AsyncEngine
) -> None:
    old = datetime.now(UTC) - timedelta(days=5)
    dispute_id, _ = await _dispute(engine, "01234/QĐ-XPHC", opened=old)
    await make_user(engine, "fin.an", "finance", PASSWORD)
    await log_in(console, "fin.an")
    listing = await (await console.get("/console/disputes")).text()
    assert f'href="/console/disputes/{dispute_id}"' in listing
    assert "Quá hạn" in listing
    assert "5 ngày" in listing
    page = await (await console.get(f"/console/disputes/{dispute_id}")).text()
    assert "Quá hạn" in page
    assert "800.000 đ" in page
    assert "SG-REF-01234" in page
    assert "Liên hệ của công dân" in page
    assert "0912345678 / an&lt;script&gt;" in page
    assert HOSTILE not in page
    assert "&lt;script&gt;" in page
    english = await (await console.get(f"/console/disputes/{dispute_id}?lang=en")).text()
    assert "Overdue" in english
    bad = await console.get("/console/disputes?status=%3Cx%3E")
    assert bad.status == 400
    bad_bank = await console.get("/console/approvals?kind=nope")
    assert bad_bank.status == 400


async def test_unit_scope_and_roles_that_may_not(console: Console, engine: AsyncEngine) -> None:
    theirs, _ = await _dispute(engine, "00999/QĐ-XPHC", unit=OTHER_UNIT)
    ours, _ = await _dispute(engine, "01234/QĐ-XPHC")
    await make_user(engine, "an.officer", "officer", PASSWORD, units=(UNIT,))
    await log_in(console, "an.officer")
    listing = await (await console.get("/console/disputes")).text()
    assert f'href="/console/disputes/{ours}"' in listing
    assert f'href="/console/disputes/{theirs}"' not in listing
    assert "00999" not in listing
    missing = await console.get(f"/console/disputes/{theirs}")
    assert missing.status == 404
    assert "00999" not in await missing.text()
    # The officer may not see approvals: the 403 page, no data, no nav link.
    refused = await console.get("/console/approvals")
    assert refused.status == 403
    assert "Vai trò của bạn không được phép" in await refused.text()
    assert 'href="/console/approvals"' not in listing
    # A unit-scoped finance person may not read the audit log: no unit to narrow it to.
    await make_user(engine, "fin.scoped", "finance", PASSWORD, units=(UNIT,))
    await log_in(console, "fin.scoped")
    scoped = await console.get("/console/audit")
    assert scoped.status == 403
    assert "không gắn với đơn vị" in await scoped.text()
