"""The reconciliation API over HTTP: statement upload (and what a bad or big
file gets), re-upload, run status, discrepancies with paging, filters and
actions, reports, and who may do what."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pypdf import PdfReader
from sqlalchemy import text

from bank_adapters.simulators.render import SimLine, render_csv
from tests.integration.reconciliation.conftest import ReconStack
from tests.support.api import make_token
from tests.support.stack import PAYER, eventually


def _statement(lines: list[tuple[str, int, str, str]]) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=1)
    rows = [SimLine(ref, at, amount, way, PAYER, note) for ref, amount, way, note in lines]
    return render_csv(rows)


async def _upload(stack: ReconStack, data: bytes, **params: str) -> tuple[int, Any]:
    query = {"bank": "hnbank", "format": "csv", "statement_date": stack.today.isoformat()}
    query.update(params)
    return await stack.saga.call(
        "POST",
        "/api/v1/statements",
        params=query,
        data=data,
        headers={"Content-Type": "text/csv"},
    )


async def _count(stack: ReconStack, table: str) -> int:
    async with stack.saga.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_an_uploaded_statement_is_reconciled_and_a_reupload_adds_nothing(
    recon_stack: ReconStack,
) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(300_000)
    data = _statement(
        [
            ("UP1", 300_000, "C", f"NOP PHAT {number.replace('/', ' ')}"),
            ("UP2", 77_000, "C", "CHUYEN TIEN"),
            ("UP3", 300_000, "C", f"{number} lan 2"),
            ("UP4", 11_000, "D", "PHI SMS"),
        ]
    )
    status, started = await _upload(stack, data)
    assert status == 202, started
    assert (started["file_lines"], started["already_imported"]) == (4, False)
    run = await stack.wait_run(started["reconciliation_id"])
    assert run["status"] == "completed", run
    # Matched as usual, but a file is a claim: nothing it says moves money
    # or holds it until the bank confirms (test_upload_claims.py).
    assert (run["lines"], run["healed"], run["duplicates"], run["unknown"]) == (4, 0, 0, 0)
    assert (run["unconfirmed"], run["discrepancies_open"]) == (4, 4)
    assert run["credit_total_vnd"] == 677_000
    assert run["debit_total_vnd"] == 11_000
    status, page = await stack.saga.call("GET", "/api/v1/discrepancies")
    would_be = {d["bank_ref"]: d["detail"]["would_be"] for d in page["items"]}
    assert would_be == {"UP1": "healed", "UP2": "unknown", "UP3": "duplicate", "UP4": "unknown"}
    assert (await stack.saga.fine(number))["status"] == "unpaid"
    assert await _count(stack, "journal_entries") == 0

    status, again = await _upload(stack, data)
    assert (status, again["already_imported"]) == (202, True)
    rerun = await stack.wait_run(again["reconciliation_id"])
    assert (rerun["lines"], rerun["new_lines"]) == (4, 0)
    assert await _count(stack, "statement_lines") == 4
    assert await _count(stack, "statement_imports") == 1


@pytest.mark.parametrize("recon_stack", [{"recon_upload_bytes_max": 4096}], indirect=True)
async def test_a_bad_file_is_refused_naming_the_line_and_nothing_is_stored(
    recon_stack: ReconStack,
) -> None:
    stack = recon_stack
    good = _statement([("B1", 1_000, "C", "a"), ("B2", 2_000, "C", "b")])
    bad = good.replace(b",2000,", b",2000.5,")
    status, body = await _upload(stack, bad)
    assert status == 400, body
    assert body["error"]["code"] == "invalid_statement"
    assert "line 3" in body["error"]["message"]
    status, body = await _upload(stack, good, format="mt940")
    assert status == 400
    status, body = await _upload(stack, good, format="pdf")
    assert (status, body["error"]["field"]) == (400, "format")
    tomorrow = (stack.today + timedelta(days=1)).isoformat()
    status, body = await _upload(stack, good, statement_date=tomorrow)
    assert (status, body["error"]["field"]) == (400, "statement_date")
    big = good + b"x" * stack.saga.settings.recon_upload_bytes_max
    status, body = await _upload(stack, big)
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    assert await _count(stack, "statement_imports") == 0
    assert await _count(stack, "reconciliations") == 0


async def test_discrepancies_page_filter_and_dismiss(recon_stack: ReconStack) -> None:
    stack = recon_stack
    data = _statement([(f"D{i}", 10_000 + i, "C", "CHUYEN TIEN") for i in range(5)])
    _status, started = await _upload(stack, data)
    run = await stack.wait_run(started["reconciliation_id"])
    assert run["discrepancies_open"] == 5
    labels = {"bank": "hnbank", "kind": "unconfirmed"}
    # The finish activity sets the gauge just after it commits the run's
    # status, which is what wait_run saw: the gauge may lag by a moment.
    await eventually(
        lambda: REGISTRY.get_sample_value("reconciliation_discrepancies", labels) == 5,
        10,
        "the discrepancy gauge to count the run's five uploaded lines",
    )
    lines = {"bank": "hnbank", "result": "unconfirmed"}
    assert (REGISTRY.get_sample_value("reconciliation_lines_total", lines) or 0) >= 5

    seen: list[int] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"kind": "unconfirmed", "status": "open", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        status, page = await stack.saga.call("GET", "/api/v1/discrepancies", params=params)
        assert status == 200, page
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    first = page["items"][-1]
    # An uploaded line is never refunded on the file's word, nor held.
    assert first["actions"] == ["confirm_with_bank", "request_manual_match", "dismiss"]
    assert first["in_suspense"] is False
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{first['id']}/actions",
        json={"action": "request_refund", "reason": "trả lại"},
    )
    assert (status, body["error"]["code"]) == (409, "discrepancy_action_refused")
    assert "uploaded" in body["error"]["message"]

    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{first['id']}/actions",
        json={"action": "dismiss", "reason": "phí chuyển khoản nội bộ, đã đối chiếu"},
    )
    assert status == 200, body
    assert (body["discrepancy"]["status"], body["discrepancy"]["actions"]) == ("dismissed", [])
    status, body = await stack.saga.call(
        "POST",
        f"/api/v1/discrepancies/{first['id']}/actions",
        json={"action": "dismiss", "reason": "again"},
    )
    assert (status, body["error"]["code"]) == (409, "discrepancy_closed")
    status, body = await stack.saga.call(
        "POST", f"/api/v1/discrepancies/{first['id']}/actions", json={"action": "dismiss"}
    )
    assert (status, body["error"]["field"]) == (400, "reason")
    status, page = await stack.saga.call(
        "GET", "/api/v1/discrepancies", params={"status": "dismissed"}
    )
    assert [d["id"] for d in page["items"]] == [first["id"]]
    assert await stack.discrepancy_audit() == [("discrepancy.dismissed", str(first["id"]))]
    status, body = await stack.saga.call("GET", "/api/v1/discrepancies", params={"limit": "501"})
    assert (status, body["error"]["field"]) == (400, "limit")


async def test_reports_as_csv_and_pdf(recon_stack: ReconStack) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(300_000)
    data = _statement([("R1", 300_000, "C", number), ("R2", 5_000, "C", "=cmd|calc")])
    _status, started = await _upload(stack, data)
    run = await stack.wait_run(started["reconciliation_id"])
    async with stack.saga.session.get(
        run["report_csv_url"], headers=stack.saga.headers
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        body = (await response.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["bank_ref"], r["class"]) for r in rows] == [
        ("R1", "unconfirmed"),
        ("R2", "unconfirmed"),
    ]
    assert rows[1]["content"] == "'=cmd|calc"  # not a formula in a spreadsheet
    assert rows[1]["discrepancy_kind"] == "unconfirmed"
    async with stack.saga.session.get(
        run["report_pdf_url"], headers=stack.saga.headers
    ) as response:
        assert response.status == 200
        pdf = await response.read()
    extracted = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "BÁO CÁO ĐỐI SOÁT" in extracted
    assert "Đã xử lý tự động" in extracted


async def test_roles(recon_stack: ReconStack) -> None:
    stack = recon_stack
    officer = await make_token(stack.saga.engine, "officer", "counter-officer")
    approver = await make_token(stack.saga.engine, "approver", "approver-1")
    body = {"bank": "hnbank", "statement_date": stack.today.isoformat()}
    as_officer = {"Authorization": f"Bearer {officer}"}
    status, _ = await stack.saga.call(
        "POST", "/api/v1/reconciliations", json=body, headers=as_officer
    )
    assert status == 403
    status, _ = await stack.saga.call("GET", "/api/v1/discrepancies", headers=as_officer)
    assert status == 403
    as_approver = {"Authorization": f"Bearer {approver}"}
    status, _ = await stack.saga.call("GET", "/api/v1/discrepancies", headers=as_approver)
    assert status == 200
    status, _ = await stack.saga.call(
        "POST", "/api/v1/reconciliations", json=body, headers=as_approver
    )
    assert status == 403
    status, found = await stack.saga.call("POST", "/api/v1/reconciliations", json={**body, "x": 1})
    assert (status, found["error"]["field"]) == (400, "x")
    status, found = await stack.saga.call(
        "POST", "/api/v1/reconciliations", json={**body, "bank": "nobank"}
    )
    assert (status, found["error"]["field"]) == (400, "bank")
    status, found = await stack.saga.call("GET", "/api/v1/reconciliations/999")
    assert status == 404
    status, rules = await stack.saga.call(
        "GET", "/api/v1/reconciliation-rules", params={"bank": "hnbank"}
    )
    assert status == 200
    assert [r["rule"] for r in rules["rules"]][:2] == ["bank_ref", "end_to_end"]
