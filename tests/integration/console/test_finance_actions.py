"""Acting on one discrepancy or one dispute from its console page, on the
real app, PostgreSQL and Temporal dev server (no worker: a request for
approval waits, nothing moves): the forms shown to the roles that may act
and to nobody else; the result (the approval asked for and who must
decide it, or the new state); and each attack refused with nothing
changed — no or another session's CSRF token, a role that may not, an id
that does not exist, a closed item, a reason of 100 KB or holding a
control character, and a double submit (one approval, not two)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import disputes as ds
from ledger.access import get_user
from ledger.access.sessions import create_session
from reconciler.devstack.ports import free_port
from reconciler.devstack.temporal import TemporalInfo
from tests.integration.console.conftest import Console
from tests.integration.console.sessions import staff_session
from tests.support.api import make_token
from tests.support.db import value
from tests.support.ledger import make_fine
from tests.support.receipts import UNIT
from tests.support.recon import line, reconcile
from tests.support.stack import random_ids

QUEUE = "/console/discrepancies"
DISPUTES = "/console/disputes"
OTHER_UNIT = "Đội CSGT số 9"
LONG_REASON = "x" * 100_000


@pytest.fixture
def console_overrides(temporal_server: TemporalInfo, task_queue: str) -> dict[str, Any]:
    # The banks answer nothing (a closed port): asking one again is recorded
    # as "unreachable", quickly.
    banks = {
        bank: {"protocol": "rest", "url": f"http://127.0.0.1:{free_port()}"}
        for bank in ("hnbank", "sgbank")
    }
    return {
        "banks": banks,
        "temporal_address": temporal_server.address,
        "task_queue": task_queue,
        "evidence_bank_timeout_seconds": 1.0,
    }


@pytest.fixture(autouse=True)
async def far_ids(engine: AsyncEngine) -> None:
    await random_ids(engine)


async def _other_csrf(engine: AsyncEngine) -> str:
    """The CSRF token of another person's live session."""
    await make_token(engine, "finance", "fin.other")
    async with engine.begin() as conn:
        user = await get_user(conn, "fin.other")
        _, session = await create_session(conn, user.id, user.username, datetime.now(UTC))
    return session.csrf_secret


async def _forged(
    engine: AsyncEngine, form: dict[str, str]
) -> list[tuple[dict[str, str], int, str]]:
    """What every action form is refused (with what its page says): no
    CSRF token, another session's, no reason, a reason of 100 KB, one
    holding a control or an invisible (bidi override) character."""
    return [
        ({k: v for k, v in form.items() if k != "csrf"}, 403, "Yêu cầu bị từ chối"),
        ({**form, "csrf": await _other_csrf(engine)}, 403, "Yêu cầu bị từ chối"),
        ({**form, "reason": "  "}, 400, "Lý do: cần nhập lý do"),
        ({**form, "reason": LONG_REASON}, 400, "Lý do: dài quá 2.000 ký tự"),
        ({**form, "reason": "hoàn\x07tiền"}, 400, "Lý do: có ký tự điều khiển"),
        ({**form, "reason": "hoàn \u202etiền"}, 400, "có ký tự điều khiển hoặc ký tự ẩn"),
    ]


async def _state(engine: AsyncEngine) -> tuple[Any, ...]:
    """What an action may change: approvals, audit rows, the discrepancies'
    and disputes' statuses and notes."""
    approvals = await value(engine, "SELECT count(*) FROM approvals")
    audit = await value(engine, "SELECT count(*) FROM audit_log")
    items = await value(
        engine,
        "SELECT coalesce(string_agg(status || detail::text, ',' ORDER BY id), '') "
        "FROM discrepancies",
    )
    disputes = await value(
        engine, "SELECT coalesce(string_agg(status, ',' ORDER BY id), '') FROM disputes"
    )
    return approvals, audit, items, disputes


async def _refused(
    console: Console, engine: AsyncEngine, path: str, forms: list[tuple[dict[str, str], int, str]]
) -> None:
    """Each form posted to ``path`` is answered ``status`` with ``said`` on
    the page, and nothing changes."""
    before = await _state(engine)
    for form, status, said in forms:
        resp = await console.post(path, data=form)
        page = await resp.text()
        assert resp.status == status, (form.get("reason", "")[:40], page[-600:])
        assert said in page, (said, page[-600:])
        assert await _state(engine) == before, form.get("reason", "")[:40]


async def _asked_twice(
    console: Console, engine: AsyncEngine, path: str, form: dict[str, str], said: list[str]
) -> int:
    """The same request sent twice (a double submit): both pages show the
    one approval it made (``said``, ``{id}`` its number); returns its id."""
    asked = [await console.post(path, data=form) for _ in range(2)]
    approval_id = int(await value(engine, "SELECT id FROM approvals"))
    for resp in asked:
        shown = await resp.text()
        assert resp.status == 202, shown[-600:]
        for text in said:
            assert text.format(id=approval_id) in shown, text
    assert await value(engine, "SELECT count(*) FROM approvals") == 1
    return approval_id


async def test_discrepancy_actions(console: Console, engine: AsyncEngine) -> None:
    await reconcile(engine, [line(500_000, "CK A"), line(480_000, "nop phat")])
    first, second = [
        int(i) for i in await value(engine, "SELECT array_agg(id ORDER BY id) FROM discrepancies")
    ]
    csrf = await staff_session(console, engine, "finance")
    page = await (await console.get(f"{QUEUE}/{first}")).text()
    for action in ("request_refund", "request_manual_match", "dismiss"):
        assert f'name="action" value="{action}"' in page
    assert 'value="confirm_with_bank"' not in page  # the bank's own line: nothing to confirm
    path = f"{QUEUE}/{first}/actions"
    refund = {"csrf": csrf, "action": "request_refund", "reason": "chuyển nhầm, xin hoàn"}
    await _refused(
        console,
        engine,
        path,
        [
            *await _forged(engine, refund),
            ({**refund, "action": "pay_me"}, 400, "Thao tác: must be one of"),
            ({**refund, "payee_account": "990011223344"}, 400, "Tài khoản nhận tiền hoàn"),
            (
                {**refund, "action": "request_manual_match", "decision_number": "99999/QĐ-XPHC"},
                404,
                "không tìm thấy",
            ),
        ],
    )
    english = await console.post(path + "?lang=en", data={**refund, "reason": LONG_REASON})
    assert "Reason: is longer than 2,000 characters. Nothing was changed." in await english.text()
    await console.get(f"{QUEUE}/{first}?lang=vi")  # the language cookie back to Vietnamese
    # Asked: the approval and who must decide it; asked again (a double
    # submit), the same approval, noted once, audited once.
    await _asked_twice(
        console,
        engine,
        path,
        refund,
        ["#{id}: Hoàn tiền", "Một người khác có vai trò admin, approver", "a.finance không thể"],
    )
    requested = "SELECT count(*) FROM audit_log WHERE action = 'approval.requested'"
    assert await value(engine, requested) == 1
    noted = "SELECT jsonb_array_length(detail->'requests') FROM discrepancies WHERE id = :i"
    assert await value(engine, noted, i=first) == 1
    assert await value(engine, "SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 0
    # Dismissed at once, audited; a second dismissal (or any action) of the
    # closed item is refused and its page offers no more forms.
    dismiss = {"csrf": csrf, "action": "dismiss", "reason": "thử nghiệm của ngân hàng"}
    done = await console.post(f"{QUEUE}/{second}/actions", data=dismiss)
    assert done.status == 200
    assert "Đã bỏ qua mục này" in await done.text()
    assert 'name="action"' not in await done.text()
    dismissed = "SELECT actor FROM audit_log WHERE action = 'discrepancy.dismissed'"
    assert await value(engine, dismissed) == "a.finance"
    await _refused(
        console,
        engine,
        f"{QUEUE}/{second}/actions",
        [
            (dismiss, 409, "already dismissed"),
            ({**refund, "csrf": csrf}, 409, "trạng thái hiện tại không cho phép"),
        ],
    )
    await _refused(
        console, engine, f"{QUEUE}/999999999/actions", [(dismiss, 404, "Không tìm thấy mục này")]
    )
    # Roles that may not act: no forms, and a forged POST is the 403 page.
    for role in ("approver", "officer", "operator"):
        other = await staff_session(console, engine, role)
        if role == "approver":
            seen = await (await console.get(f"{QUEUE}/{first}")).text()
            assert 'name="action"' not in seen
        forged = {**dismiss, "csrf": other}
        await _refused(console, engine, path, [(forged, 403, "Không có quyền truy cập")])


async def _dispute(engine: AsyncEngine, number: str, unit: str = UNIT) -> int:
    await make_fine(engine, number, 800_000, unit)
    now = datetime.now(UTC)
    complaint = ds.DisputeInput(
        decision_number=number,
        bank="sgbank",
        amount_vnd=800_000,
        occurred_at=now - timedelta(hours=1),
        description="bị trừ tiền, chưa có biên lai",
        bank_ref=f"SG-REF-{number[:5]}",
        payer_account="123456789",
    )
    async with engine.begin() as conn:
        return (await ds.open_dispute(conn, complaint, "an.officer", now)).id


async def test_dispute_actions(console: Console, engine: AsyncEngine) -> None:
    ours = await _dispute(engine, "01234/QĐ-XPHC")
    theirs = await _dispute(engine, "00999/QĐ-XPHC", OTHER_UNIT)
    closed = await _dispute(engine, "01235/QĐ-XPHC")
    # An officer of the unit asks the bank again; resolving is not theirs.
    csrf = await staff_session(console, engine, "officer", units=(UNIT,))
    page = await (await console.get(f"{DISPUTES}/{ours}")).text()
    assert f"{DISPUTES}/{ours}/evidence/refresh" in page
    assert f"{DISPUTES}/{ours}/resolutions" not in page
    refreshed = await console.post(f"{DISPUTES}/{ours}/evidence/refresh", data={"csrf": csrf})
    assert refreshed.status == 200
    assert "Đã hỏi lại ngân hàng" in await refreshed.text()
    gathered = "SELECT gathered_by FROM dispute_evidence WHERE dispute_id = :i"
    assert await value(engine, gathered, i=ours) == "a.officer"
    reject = {"csrf": csrf, "action": "reject", "reason": "không có căn cứ"}
    await _refused(
        console,
        engine,
        f"{DISPUTES}/{ours}/resolutions",
        [(reject, 403, "Không có quyền truy cập")],
    )
    await _refused(
        console,
        engine,
        f"{DISPUTES}/{theirs}/evidence/refresh",
        [({"csrf": csrf}, 404, "Không tìm thấy mục này"), ({}, 403, "Yêu cầu bị từ chối")],
    )
    operator = await staff_session(console, engine, "operator")
    await _refused(
        console,
        engine,
        f"{DISPUTES}/{ours}/evidence/refresh",
        [({"csrf": operator}, 403, "Không có quyền truy cập")],
    )
    # An admin resolves: a refund asked for twice is one approval, which
    # the inbox never offers them to approve.
    csrf = await staff_session(console, engine, "admin")
    path = f"{DISPUTES}/{ours}/resolutions"
    refund = {"csrf": csrf, "action": "refund", "reason": "bị trừ hai lần"}
    await _refused(
        console,
        engine,
        path,
        [
            *await _forged(engine, refund),
            ({**refund, "reason": "a\x00b"}, 400, "có ký tự điều khiển"),
            ({**refund, "bank_ref": "<script>"}, 400, "Mã giao dịch ngân hàng: is not valid"),
            ({**refund, "csrf": csrf, "action": "refund_twice"}, 400, "Thao tác"),
        ],
    )
    approval_id = await _asked_twice(
        console, engine, path, refund, ["#{id}: Hoàn tiền theo khiếu nại", "a.admin không thể"]
    )
    inbox = await (await console.get("/console/approvals")).text()
    assert "Đây là yêu cầu của bạn" in inbox
    assert f"/console/approvals/{approval_id}/approve" not in inbox
    # Awaiting approval, then rejected: no other resolution, nothing changed.
    await _refused(
        console, engine, path, [({**refund, "action": "confirm"}, 409, "awaiting_approval")]
    )
    rejected = await console.post(
        f"{DISPUTES}/{closed}/resolutions", data={**refund, "action": "reject"}
    )
    assert rejected.status == 200
    assert "Đã bác khiếu nại" in await rejected.text()
    await _refused(
        console,
        engine,
        f"{DISPUTES}/{closed}/resolutions",
        [({**refund, "action": "confirm"}, 409, "rejected, not open")],
    )
    await _refused(
        console, engine, f"{DISPUTES}/999999999/resolutions", [(refund, 404, "Không tìm thấy")]
    )
