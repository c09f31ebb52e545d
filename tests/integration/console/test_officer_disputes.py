"""The counter's "debited but no receipt" dispute: opened with the
citizen's contact (in its own fields, out of the audit log) over what
``POST /api/v1/disputes`` does; a bad contact,
another unit's fine, a missing or wrong CSRF token or a role without
``disputes:open`` records nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.devstack.ports import free_port
from tests.integration.console.conftest import PASSWORD, Console, fine_with, log_in
from tests.support.api import make_user
from tests.support.db import value
from tests.support.receipts import UNIT

OTHER_UNIT = "Đội CSGT số 9"
FORM = {
    "decision_number": "00021/QĐ-XPHC",
    "bank": "vcb",
    "amount_vnd": "800.000",
    "occurred_at": "2025-03-01T09:30",
    "bank_ref": "",
    "phone": "0912 345 678",
    "email": "",
    "description": "Đã bị trừ tiền, chưa có biên lai <b>gấp</b>",
}


@pytest.fixture
def console_overrides() -> dict[str, Any]:
    # A bank nobody listens on: the evidence says so, the dispute is kept.
    down = f"http://127.0.0.1:{free_port()}"
    return {
        "banks": {"vcb": {"protocol": "rest", "url": down}},
        "evidence_bank_timeout_seconds": 1.0,
    }


async def _disputes(engine: AsyncEngine) -> int:
    return int(await value(engine, "SELECT count(*) FROM disputes"))


async def _post(console: Console, csrf: str | None, **changes: str) -> tuple[int, str]:
    form = {**FORM, **changes}
    if csrf is not None:
        form["csrf"] = csrf
    resp = await console.post("/console/disputes/new", data=form)
    return resp.status, await resp.text()


async def test_an_officer_opens_a_dispute_with_the_citizens_contact(
    console: Console, engine: AsyncEngine
) -> None:
    await fine_with(engine, "00021/QĐ-XPHC", None)
    await make_user(engine, "an.officer", "officer", PASSWORD, units=(UNIT,))
    csrf = await log_in(console, "an.officer")
    form = await console.get("/console/disputes/new?decision=00021/QĐ-XPHC")
    assert form.status == 200
    assert 'value="00021/QĐ-XPHC"' in await form.text()
    status, page = await _post(console, csrf)
    assert status == 201, page
    assert "Đã mở khiếu nại số" in page
    row = await value(
        engine,
        "SELECT concat_ws('|', description, contact_phone, coalesce(contact_email, '-'),"
        " opened_by, amount_vnd) FROM disputes",
    )
    assert row == "Đã bị trừ tiền, chưa có biên lai <b>gấp</b>|0912345678|-|an.officer|800000"
    # The contact is in its own columns, not in the audit log's copy.
    opened = await value(
        engine, "SELECT detail::text FROM audit_log WHERE action = 'dispute.opened'"
    )
    assert "0912345678" not in opened
    assert '"contact": ["phone"]' in opened
    await _what_opens_nothing(console, engine, csrf)


async def _what_opens_nothing(console: Console, engine: AsyncEngine, csrf: str) -> None:
    await fine_with(engine, "00022/QĐ-XPHC", None, unit=OTHER_UNIT)
    before = await _disputes(engine)
    for changes, status, said in (
        ({"phone": "12345"}, 400, "số điện thoại gồm 9-11 chữ số"),
        ({"phone": "", "email": "not-an-email"}, 400, "email không hợp lệ"),
        ({"phone": "", "email": ""}, 400, "cần số điện thoại hoặc email"),
        ({"occurred_at": "yesterday"}, 400, "YYYY-MM-DD HH:MM"),
        ({"amount_vnd": "-5"}, 400, "Số tiền"),
        ({"bank": "nobank"}, 400, "Ngân hàng"),
        ({"decision_number": "00022/QĐ-XPHC"}, 404, "Không tìm thấy quyết định"),
        ({"decision_number": "99999/QĐ-XPHC"}, 404, "Không tìm thấy quyết định"),
    ):
        got, page = await _post(console, csrf, **changes)
        assert (got, said in page) == (status, True), (changes, page[-800:])
        # The form comes back as filled in, stored text escaped.
        assert "&lt;b&gt;gấp&lt;/b&gt;" in page
    for csrf_sent in (None, "forged-token"):
        got, page = await _post(console, csrf_sent, bank_ref="FT2")
        assert got == 403
    assert await _disputes(engine) == before
