"""Fines by CSV, amended and cancelled over the JSON API: validated whole
(nothing imported on any error), idempotent, unit-scoped, refused once money
moves, audited with the person; a cancelled fine cannot be paid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.errors import ConflictError
from ledger.fines import get_fine
from ledger.payments.create import create_payment
from tests.integration.console.conftest import Console, fine_with
from tests.support.api import make_service_token, make_token
from tests.support.db import value
from tests.support.receipts import UNIT

OTHER_UNIT = "Đội CSGT số 9"
HEADER = "decision_number,amount_vnd,violator_name,plate,issuing_unit,violation\n"
FILE = (
    HEADER
    + f"00031/QĐ-XPHC,800000,Nguyễn Văn A,29A-123.45,{UNIT},Vượt đèn đỏ\n"
    + f'00032/QĐ-XPHC,500000,"Trần Thị <b>B</b>",30E-111.11,{UNIT},Không đội mũ\n'
)


async def _post(console: Console, token: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    resp = await console.post(path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    return resp.status, await resp.json()


async def _count(engine: AsyncEngine, sql: str) -> int:
    return int(await value(engine, sql))


async def test_a_file_imports_whole_once_and_never_in_part(
    console: Console, engine: AsyncEngine
) -> None:
    finance = await make_token(engine, "finance", "unit-finance", units=(UNIT,))
    broken = FILE + f"00033/QĐ-XPHC,12.000,A,B,{UNIT},x\n00034/QĐ-XPHC,1,A,B,{OTHER_UNIT},x\n"
    status, body = await _post(console, finance, "/api/v1/fines/import", data=broken.encode())
    assert status == 422
    assert [(e["line"], e["column"]) for e in body["error"]["errors"]] == [
        (4, "amount_vnd"),
        (5, "issuing_unit"),
    ]
    assert await _count(engine, "SELECT count(*) FROM fines") == 0
    status, body = await _post(console, finance, "/api/v1/fines/import", data=FILE.encode())
    assert status == 201, body
    assert (body["created"], body["existing"]) == (2, 0)
    status, body = await _post(console, finance, "/api/v1/fines/import", data=FILE.encode())
    assert (status, body["created"], body["existing"]) == (200, 0, 2)
    assert body["message"].startswith("nothing new")
    changed = FILE.replace("800000", "900000") + f"00035/QĐ-XPHC,1000,A,B,{UNIT},x\n"
    status, body = await _post(console, finance, "/api/v1/fines/import", data=changed.encode())
    assert status == 422
    assert [(e["line"], e["column"]) for e in body["error"]["errors"]] == [(2, "decision_number")]
    assert await _count(engine, "SELECT count(*) FROM fines") == 2
    assert await value(
        engine, "SELECT string_agg(actor, ',') FROM audit_log WHERE action = 'fines.imported'"
    ) == ("unit-finance,unit-finance")
    officer = await make_token(engine, "officer", "an-officer", units=(UNIT,))
    status, _ = await _post(console, officer, "/api/v1/fines/import", data=FILE.encode())
    assert status == 403


async def test_amend_until_money_moves(console: Console, engine: AsyncEngine) -> None:
    finance = await make_token(engine, "finance", "unit-finance", units=(UNIT,))
    await fine_with(engine, "00041/QĐ-XPHC", "declined")
    await fine_with(engine, "00042/QĐ-XPHC", "verifying")
    await fine_with(engine, "00043/QĐ-XPHC", None, unit=OTHER_UNIT)
    path = "/api/v1/fines/{}/amend"
    change = {"amount_vnd": 900_000, "due_date": "2026-12-31", "plate": "29A-1", "reason": "typo"}
    status, body = await _post(console, finance, path.format("00041/QĐ-XPHC"), json=change)
    assert (status, body["amount_vnd"], body["plate"]) == (200, 900_000, "29A-1")
    status, body = await _post(console, finance, path.format("00042/QĐ-XPHC"), json=change)
    assert status == 409
    status, body = await _post(console, finance, path.format("00043/QĐ-XPHC"), json=change)
    assert status == 404
    portal = await make_service_token(engine, "a-portal", "portal")
    status, body = await _post(console, portal, path.format("00041/QĐ-XPHC"), json=change)
    assert status == 403
    amounts = await value(
        engine, "SELECT string_agg(amount_vnd::text, ',' ORDER BY decision_number) FROM fines"
    )
    assert amounts == "900000,800000,800000"
    detail = await value(
        engine,
        "SELECT actor || ' ' || (detail->'before'->>'amount_vnd') FROM audit_log"
        " WHERE action = 'fine.amended'",
    )
    assert detail == "unit-finance 800000"


async def test_cancel_unless_paid_or_in_doubt_and_never_pay_it_then(
    console: Console, engine: AsyncEngine
) -> None:
    finance = await make_token(engine, "finance", "unit-finance", units=(UNIT,))
    await fine_with(engine, "00051/QĐ-XPHC", None)
    await fine_with(engine, "00052/QĐ-XPHC", "succeeded")
    await fine_with(engine, "00053/QĐ-XPHC", "initiated")
    path = "/api/v1/fines/{}/cancel"
    for number, expected in (
        ("00051/QĐ-XPHC", 200),
        ("00051/QĐ-XPHC", 409),  # already
        ("00052/QĐ-XPHC", 409),  # paid
        ("00053/QĐ-XPHC", 409),  # in doubt
    ):
        status, body = await _post(
            console, finance, path.format(quote(number, safe="")), json={"reason": "voided"}
        )
        assert status == expected, (number, body)
    status, body = await _post(console, finance, path.format("00051/QĐ-XPHC"), json={})
    assert (status, body["error"]["field"]) == (400, "reason")
    assert await _count(engine, "SELECT count(*) FROM fines WHERE cancelled_at IS NOT NULL") == 1
    async with engine.begin() as conn:
        fine = await get_fine(conn, "00051/QĐ-XPHC")
        with pytest.raises(ConflictError, match="cancelled"):
            await create_payment(conn, fine, "vcb", "0011001234567", datetime.now(UTC))
    admin = await make_token(engine, "admin", "an-admin")
    headers = {"Authorization": f"Bearer {admin}"}
    body = await (await console.get("/api/v1/fines?status=unpaid", headers=headers)).json()
    assert [f["cancelled_at"] is not None for f in body["fines"]] == [True]
