"""The reconciliation pages: runs, one run's totals and lines (stored text
escaped), the report links, a running run that refreshes itself, and the
fetch and upload forms refused (no CSRF token, a file over the cap, no
workflow service) with nothing stored; a role that may only read:
``test_finance_queue.py``."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.reconciliation.followup import finish_run
from reconciler.devstack.ports import free_port
from tests.integration.console.conftest import PASSWORD, Console, log_in
from tests.support.api import make_user
from tests.support.db import value
from tests.support.recon import BANK, NOW, line, reconcile, run_and_import

HOSTILE = "<b>NOP PHAT</b>"
UPLOAD_MAX = 2048


@pytest.fixture
def console_overrides() -> dict[str, Any]:
    return {
        "banks": {BANK: {"protocol": "rest", "url": f"http://127.0.0.1:{free_port()}"}},
        # Nothing listens there: the workflow service is down.
        "temporal_address": f"127.0.0.1:{free_port()}",
        "temporal_connect_timeout_seconds": 0.5,
        "recon_upload_bytes_max": UPLOAD_MAX,
    }


def _upload(csrf: str | None, size: int = 100, bank: str = BANK) -> FormData:
    form = FormData()
    if csrf is not None:
        form.add_field("csrf", csrf)
    form.add_field("bank", bank)
    form.add_field("statement_date", "2026-11-23")
    form.add_field("format", "csv")
    form.add_field("statement", b"x" * size, filename="sao-ke.csv", content_type="text/csv")
    return form


async def _stored(engine: AsyncEngine) -> tuple[int, int]:
    runs = await value(engine, "SELECT count(*) FROM reconciliations")
    imports = await value(engine, "SELECT count(*) FROM statement_imports")
    return int(runs), int(imports)


async def test_runs_lines_and_reports(console: Console, engine: AsyncEngine) -> None:
    run, _ = await reconcile(engine, [line(500_000, HOSTILE), line(700_000, "CHUYEN KHOAN")])
    async with engine.begin() as conn:
        await finish_run(conn, run.id, NOW)
    await make_user(engine, "fin.an", "finance", PASSWORD)
    await log_in(console, "fin.an")
    runs = await (await console.get("/console/reconciliations")).text()
    assert f'href="/console/reconciliations/{run.id}"' in runs
    assert 'enctype="multipart/form-data"' in runs
    assert '<script src="/console/static/finance-upload.js"' in runs
    page = await (await console.get(f"/console/reconciliations/{run.id}")).text()
    assert "Hoàn thành" in page
    assert "500.000 đ" in page
    assert HOSTILE not in page
    assert "&lt;b&gt;NOP PHAT&lt;/b&gt;" in page
    assert 'http-equiv="refresh"' not in page
    one = await (await console.get(f"/console/reconciliations/{run.id}?limit=1")).text()
    assert f"/console/reconciliations/{run.id}?cursor=" in one
    csv_report = await console.get(f"/console/reconciliations/{run.id}/report.csv")
    assert csv_report.status == 200
    assert csv_report.content_type == "text/csv"
    assert (await console.get("/console/reconciliations?class=nope")).status == 200
    assert (await console.get(f"/console/reconciliations/{run.id}?class=%3C")).status == 400
    script = await console.get("/console/static/finance-upload.js")
    assert "drop" in await script.text()


async def test_a_running_run_refreshes_and_the_forms_refuse(
    console: Console, engine: AsyncEngine
) -> None:
    running, _ = await run_and_import(engine, [line(500_000)])
    await make_user(engine, "fin.an", "finance", PASSWORD)
    csrf = await log_in(console, "fin.an")
    page = await (await console.get(f"/console/reconciliations/{running.id}")).text()
    assert 'http-equiv="refresh"' in page
    assert "Đang chạy" in page
    before = await _stored(engine)
    no_token = await console.post("/console/reconciliations/upload", data=_upload(None))
    assert no_token.status == 403
    too_big = await console.post(
        "/console/reconciliations/upload", data=_upload(csrf, UPLOAD_MAX + 1)
    )
    assert too_big.status == 413
    bad_bank = await console.post("/console/reconciliations/upload", data=_upload(csrf, bank="x"))
    assert bad_bank.status == 400
    down = await console.post("/console/reconciliations/upload", data=_upload(csrf))
    assert down.status == 503
    assert "không có gì được bắt đầu" in await down.text()
    fetch = {"csrf": csrf, "bank": BANK, "statement_date": "2026-11-23"}
    assert (await console.post("/console/reconciliations", data=fetch)).status == 503
    assert (
        await console.post("/console/reconciliations", data={**fetch, "csrf": "x"})
    ).status == 403
    assert await _stored(engine) == before
