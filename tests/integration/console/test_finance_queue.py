"""The discrepancy work queue: filters (amount, bank reference, age,
assignee), bulk assignment all or none (a closed item, a person who may
not work them, no CSRF token: nothing changes), audited notes escaped on
the page, and a role that may only read gets no forms (here nor on the
reconciliation page) and a 403 on POST."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.reconciliation import discrepancies as disc
from reconciler.devstack.ports import free_port
from tests.integration.console.conftest import PASSWORD, Console, log_in
from tests.support.api import make_token, make_user
from tests.support.db import value
from tests.support.recon import BANK, NOW, line, reconcile

PATH = "/console/discrepancies"


@pytest.fixture
def console_overrides() -> dict[str, Any]:
    return {"banks": {BANK: {"protocol": "rest", "url": f"http://127.0.0.1:{free_port()}"}}}


async def _assigned(engine: AsyncEngine) -> tuple[int, int]:
    rows = await value(engine, "SELECT count(*) FROM discrepancy_assignments")
    audits = await value(engine, "SELECT count(*) FROM audit_log")
    return int(rows), int(audits)


async def test_filters_bulk_assignment_and_notes(console: Console, engine: AsyncEngine) -> None:
    await reconcile(
        engine, [line(500_000, "CK A", ref="FTSMALL1"), line(900_000, "CK B", ref="FTBIG1")]
    )
    ids = [int(i) for i in await _ids(engine)]
    small, big = ids
    await make_user(engine, "fin.an", "finance", PASSWORD)
    await make_token(engine, "finance", "fin.binh")  # people who need not log in
    await make_token(engine, "officer", "an.officer")
    csrf = await log_in(console, "fin.an")
    page = await (await console.get(f"{PATH}?amount_min=800000")).text()
    assert f'href="{PATH}/{big}"' in page
    assert f'href="{PATH}/{small}"' not in page
    assert "Quá hạn" in page  # raised on NOW, days ago
    by_ref = await (await console.get(f"{PATH}?bank_ref=FTSMALL1")).text()
    assert f'href="{PATH}/{small}"' in by_ref
    assert f'href="{PATH}/{big}"' not in by_ref
    recent = await (await console.get(f"{PATH}?older_than_days=3650")).text()
    assert "Không có mục nào" in recent
    assert (await console.get(f"{PATH}?amount_min=9&amount_max=1")).status == 400
    before = await _assigned(engine)
    form = [("csrf", csrf), ("id", str(small)), ("id", str(big)), ("assignee", "an.officer")]
    assert (await console.post(f"{PATH}/assign", data=form)).status == 400
    assert (await console.post(f"{PATH}/assign", data=form[1:])).status == 403
    assert await _assigned(engine) == before
    form[-1] = ("assignee", "fin.binh")
    done = await console.post(f"{PATH}/assign", data=form)
    assert done.status == 200
    assert await _assigned(engine) == (2, before[1] + 2)
    mine = await (await console.get(f"{PATH}?assignee=fin.binh")).text()
    assert f'href="{PATH}/{small}"' in mine
    assert f'href="{PATH}/{big}"' in mine
    # All or none: a closed item in the batch refuses the whole batch.
    async with engine.begin() as conn:
        await disc.close_discrepancy(conn, small, "dismissed", "fin.an", "test", NOW)
    form[-1] = ("assignee", "fin.an")
    assert (await console.post(f"{PATH}/assign", data=form)).status == 409
    assert (
        await value(
            engine, "SELECT assignee FROM discrepancy_assignments WHERE discrepancy_id = :i", i=big
        )
        == "fin.binh"
    )
    noted = await console.post(f"{PATH}/{big}/notes", data={"csrf": csrf, "note": "<i>gọi NH</i>"})
    assert noted.status == 200
    assert "&lt;i&gt;gọi NH&lt;/i&gt;" in await noted.text()
    assert (
        await value(engine, "SELECT count(*) FROM audit_log WHERE action = 'discrepancy.note'") == 1
    )


async def _ids(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        items, _ = await disc.list_discrepancies(conn, disc.DiscrepancyFilter())
    return sorted(i.id for i in items)


async def test_a_reader_gets_no_forms(console: Console, engine: AsyncEngine) -> None:
    await reconcile(engine, [line(500_000, "CK A")])
    (item,) = await _ids(engine)
    await make_user(engine, "duyet.binh", "approver", PASSWORD)
    csrf = await log_in(console, "duyet.binh")
    page = await (await console.get(PATH)).text()
    assert f'href="{PATH}/{item}"' in page
    assert 'name="id"' not in page
    one = await (await console.get(f"{PATH}/{item}")).text()
    assert f"{PATH}/{item}/notes" not in one
    refused = await console.post(f"{PATH}/{item}/notes", data={"csrf": csrf, "note": "x"})
    assert refused.status == 403
    # Nor may they start or upload a reconciliation.
    runs = await (await console.get("/console/reconciliations")).text()
    assert "/console/reconciliations/upload" not in runs
    fetch = {"csrf": csrf, "bank": BANK, "statement_date": "2026-11-23"}
    assert (await console.post("/console/reconciliations", data=fetch)).status == 403
