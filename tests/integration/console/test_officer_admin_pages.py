"""The console's fines import (upload, the error table, nothing imported on
error, "nothing new" the second time) and the amend/cancel forms on a
fine's page: CSRF, role and unit checks, nothing changed when refused."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import FormData
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.console.conftest import PASSWORD, Console, fine_with, log_in
from tests.support.api import make_user
from tests.support.db import value
from tests.support.receipts import UNIT

OTHER_UNIT = "Đội CSGT số 9"
HEADER = "decision_number,amount_vnd,violator_name,plate,issuing_unit,violation\n"
GOOD = f"00061/QĐ-XPHC,800000,<b>Lê</b> Văn C,29A-1,{UNIT},x\n"


def _form(csrf: str | None, text: str) -> FormData:
    form = FormData()
    if csrf is not None:
        form.add_field("csrf", csrf)
    form.add_field("file", text.encode(), filename="fines.csv", content_type="text/csv")
    return form


async def _fines(engine: AsyncEngine) -> int:
    return int(await value(engine, "SELECT count(*) FROM fines"))


async def test_finance_imports_amends_and_cancels(console: Console, engine: AsyncEngine) -> None:
    """One login for the three pages (a login costs more than the checks)."""
    await make_user(engine, "a.finance", "finance", PASSWORD, units=(UNIT,))
    csrf = await log_in(console, "a.finance")
    await _upload_shows_every_error_and_imports_whole_once(console, engine, csrf)
    await _amend_and_cancel_from_the_fines_page(console, engine, csrf)


async def _upload_shows_every_error_and_imports_whole_once(
    console: Console, engine: AsyncEngine, csrf: str
) -> None:
    page = await (await console.get("/console/fines/import")).text()
    assert 'enctype="multipart/form-data"' in page
    bad = HEADER + GOOD + f"00062/QĐ-XPHC,abc,A,B,{UNIT},x\n00063/QĐ-XPHC,1,A,B,{OTHER_UNIT},x\n"
    resp = await console.post("/console/fines/import", data=_form(csrf, bad))
    page = await resp.text()
    assert resp.status == 422
    assert '<th scope="row">3</th><td>amount_vnd</td>' in page
    assert '<th scope="row">4</th><td>issuing_unit</td>' in page
    assert await _fines(engine) == 0
    for sent in (None, "forged"):
        resp = await console.post("/console/fines/import", data=_form(sent, HEADER + GOOD))
        assert resp.status == 403
    assert await _fines(engine) == 0
    resp = await console.post("/console/fines/import", data=_form(csrf, HEADER + GOOD))
    assert resp.status == 200
    assert "Đã nhập 1 quyết định mới" in await resp.text()
    resp = await console.post("/console/fines/import", data=_form(csrf, HEADER + GOOD))
    assert "Không có gì mới" in await resp.text()
    page = await (await console.get("/console/counter?q=" + quote("00061/QĐ-XPHC"))).text()
    assert "&lt;b&gt;Lê&lt;/b&gt; Văn C" in page
    assert 'action="/console/fines/cancel"' in page


async def _amend_and_cancel_from_the_fines_page(
    console: Console, engine: AsyncEngine, csrf: str
) -> None:
    await fine_with(engine, "00071/QĐ-XPHC", None)
    await fine_with(engine, "00072/QĐ-XPHC", "verifying")
    await fine_with(engine, "00073/QĐ-XPHC", None, unit=OTHER_UNIT)
    amend = {"csrf": csrf, "amount_vnd": "900.000", "reason": "typo"}
    resp = await console.post(
        "/console/fines/amend",
        data={**amend, "decision_number": "00071/QĐ-XPHC"},
        allow_redirects=False,
    )
    assert resp.status == 303
    for number, status in (("00072/QĐ-XPHC", 409), ("00073/QĐ-XPHC", 404)):
        resp = await console.post("/console/fines/amend", data={**amend, "decision_number": number})
        assert resp.status == status, number
    cancel = {"csrf": csrf, "reason": "voided"}
    for number, status in (("00072/QĐ-XPHC", 409), ("00073/QĐ-XPHC", 404)):
        resp = await console.post(
            "/console/fines/cancel", data={**cancel, "decision_number": number}
        )
        assert resp.status == status, number
    resp = await console.post(
        "/console/fines/cancel",
        data={**cancel, "csrf": "forged", "decision_number": "00071/QĐ-XPHC"},
    )
    assert resp.status == 403
    amounts = await value(
        engine,
        "SELECT string_agg(amount_vnd::text || ':' || (cancelled_at IS NULL)::text, ','"
        " ORDER BY decision_number) FROM fines WHERE decision_number LIKE '0007%'",
    )
    assert amounts == "900000:true,800000:true,800000:true"
    resp = await console.post(
        "/console/fines/cancel",
        data={**cancel, "decision_number": "00071/QĐ-XPHC"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert await value(engine, "SELECT count(*) FROM fines WHERE cancelled_at IS NOT NULL") == 1
    page = await (await console.get("/console/counter?q=" + quote("00071/QĐ-XPHC"))).text()
    assert "Quyết định này đã bị hủy" in page
    assert "Lý do: voided" in page


async def test_a_role_without_the_permissions_gets_neither_forms_nor_pages(
    console: Console, engine: AsyncEngine
) -> None:
    """An operator reads fines but may not import, amend, cancel or open a
    dispute: no form, the 403 page, nothing recorded."""
    await fine_with(engine, "00081/QĐ-XPHC", None)
    await make_user(engine, "an.operator", "operator", PASSWORD)
    csrf = await log_in(console, "an.operator")
    page = await (await console.get("/console/counter?q=" + quote("00081/QĐ-XPHC"))).text()
    for link in ("/console/fines/cancel", "/console/fines/import", "/console/disputes/new"):
        assert link not in page
    for path in ("/console/fines/import", "/console/disputes/new"):
        assert (await console.get(path)).status == 403
    resp = await console.post("/console/fines/import", data=_form(csrf, HEADER + GOOD))
    assert resp.status == 403
    data = {"csrf": csrf, "reason": "x", "decision_number": "00081/QĐ-XPHC"}
    for path in ("/console/fines/cancel", "/console/fines/amend", "/console/disputes/new"):
        resp = await console.post(path, data=data)
        assert resp.status == 403, path
        assert "Không có quyền truy cập" in await resp.text()
    assert await _fines(engine) == 1
    assert await value(engine, "SELECT count(*) FROM fines WHERE cancelled_at IS NOT NULL") == 0
    assert await value(engine, "SELECT count(*) FROM disputes") == 0
