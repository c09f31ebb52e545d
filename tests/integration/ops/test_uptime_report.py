"""``reconciler report uptime`` on the real database: outages written by the
prober's own store, the month's numbers checked against them; a real outage
of a simulator's link, seen by the real prober, in this month's report; bad
arguments refused naming the option."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.business_time import business_date
from ledger.outages import PostgresOutageStore
from observability.prober import LinkProber, ProberConfig
from reconciler.cli.main import main
from reconciler.prober import health_check
from tests.support.stack import SagaStack, eventually
from workflows.payment.client import wake_bank

# September 2026 in Vietnam: 30 days, 43,200 minutes; 99.5% allows 216.
START = datetime(2026, 8, 31, 17, tzinfo=UTC)
END = datetime(2026, 9, 30, 17, tzinfo=UTC)


async def _cli(db_url: str, *args: str) -> Result:
    env = {"RECONCILER_ENV": "dev", "RECONCILER_DATABASE_URL": db_url, "RECONCILER_BANKS": "{}"}
    return await asyncio.to_thread(CliRunner().invoke, main, ["report", "uptime", *args], env=env)


async def _outage(store: PostgresOutageStore, bank: str, start: datetime, minutes: int) -> None:
    await store.open_outage(bank, start, "link probe failed")
    await store.close_outage(bank, start + timedelta(minutes=minutes))


async def _september(engine: AsyncEngine) -> None:
    store = PostgresOutageStore(engine)
    await _outage(store, "sgbank", START - timedelta(minutes=30), 50)  # 20 min in September
    await _outage(store, "sgbank", START + timedelta(days=2, hours=9), 45)
    await _outage(store, "sgbank", END - timedelta(minutes=10), 70)  # 10 min in September
    await _outage(store, "sgbank", END + timedelta(days=4), 600)  # October
    await _outage(store, "hnbank", START + timedelta(days=9), 240)  # over the budget


async def test_the_months_numbers_follow_the_outage_records(
    engine: AsyncEngine, db_url: str
) -> None:
    await _september(engine)
    result = await _cli(db_url, "--month", "2026-09", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {row["bank"]: row for row in csv.DictReader(io.StringIO(result.output))}
    assert sorted(rows) == ["hnbank", "sgbank"]
    sg, hn = rows["sgbank"], rows["hnbank"]
    assert (sg["period_start"], sg["period_end"]) == (START.isoformat(), END.isoformat())
    assert (sg["outages"], sg["minutes_down"], sg["budget_minutes"]) == ("3", "75.00", "216.00")
    assert sg["availability_percent"] == f"{100 * (1 - 75 / 43200):.3f}"  # 99.826
    assert sg["budget_left_minutes"] == "141.00"
    assert (hn["outages"], hn["minutes_down"], hn["budget_left_minutes"]) == (
        "1",
        "240.00",
        "-24.00",
    )

    text = await _cli(db_url, "--month", "2026-09", "--bank", "hnbank", "--target", "99")
    assert text.exit_code == 0, text.output
    assert "hnbank: 1 outage(s), 240.00 min down" in text.output
    assert "budget 432.00 min, 192.00 min left: within target" in text.output
    assert "sgbank" not in text.output

    october = await _cli(db_url, "--month", "2026-10", "--bank", "sgbank", "--format", "csv")
    # The 60 minutes crossing in, and the 600; 31 days allow 223.2.
    assert ",2,660.00,98.522,99.5,223.20,-436.80" in october.output


async def test_the_pdf_for_the_banks_says_the_same(
    engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    await _september(engine)
    out = tmp_path / "uptime-2026-09.pdf"
    made = await _cli(db_url, "--month", "2026-09", "--format", "pdf", "--out", str(out))
    assert made.exit_code == 0, made.output
    text_ = " ".join(page.extract_text() for page in PdfReader(out).pages)
    assert "BÁO CÁO THỜI GIAN HOẠT ĐỘNG KẾT NỐI NGÂN HÀNG" in text_
    assert "Tháng 09/2026" in text_
    for expected in ("sgbank", "75.00", "99.826%", "141.00", "hnbank", "240.00", "-24.00"):
        assert expected in text_, expected
    # Never over an existing file, and a PDF needs a file.
    again = await _cli(db_url, "--month", "2026-09", "--format", "pdf", "--out", str(out))
    assert again.exit_code == 2
    assert "exists" in again.output
    assert (await _cli(db_url, "--month", "2026-09", "--format", "pdf")).exit_code == 2


async def _outage_with_a_payment_in_doubt(stack: SagaStack, bank: str) -> str:
    """A payment paid before, then one in doubt (its answer lost) when the
    link drops; the real prober sees the outage and, on recovery, wakes the
    payment, which succeeds and gets its receipt. The in-doubt payment's id."""
    store = PostgresOutageStore(stack.engine)

    async def on_recovery(name: str) -> None:
        await wake_bank(stack.client, stack.engine, name)

    prober = LinkProber(
        {name: health_check(adapter) for name, adapter in stack.activities._adapters.items()},
        store,
        on_recovery=on_recovery,
        config=ProberConfig(interval_seconds=0.2, failures_to_down=2, successes_to_up=2),
    )
    task = asyncio.create_task(prober.run())
    try:
        _, before = await stack.pay(await stack.new_fine(), bank)
        await stack.wait_payment(before["payment_id"], {"succeeded"}, 20)
        await stack.admins[bank].add_fault("lost_response", seconds=60)
        _, held = await stack.pay(await stack.new_fine(), bank)
        await stack.wait_payment(held["payment_id"], {"verifying"}, 20)
        await stack.admins[bank].clear_faults()
        await stack.admins[bank].add_fault("link_down")
        await eventually(store.open_outages, 10, "the outage to be opened")
        await stack.admins[bank].clear_faults()

        async def closed() -> bool:
            return not await store.open_outages()

        await eventually(closed, 10, "the outage to be closed")
        payment = await stack.wait_payment(held["payment_id"], {"succeeded"}, 30)
        assert payment["receipt"] is not None
    finally:
        prober.stop()
        await asyncio.wait_for(task, 10)
    return str(held["payment_id"])


async def _issued_at(engine: AsyncEngine, payment_id: str) -> datetime:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT issued_at FROM receipts WHERE payment_id = :id"), {"id": payment_id}
        )
        issued: datetime = found.scalar_one()
    return issued.astimezone(UTC)


async def test_a_simulators_outage_and_the_payment_it_held(stack: SagaStack) -> None:
    bank = "hnbank"  # no webhooks: only a status check settles its payments
    held = await _outage_with_a_payment_in_doubt(stack, bank)
    [outage] = await PostgresOutageStore(stack.engine).recent(limit=10, bank=bank)
    assert outage.duration_seconds is not None
    assert outage.ended_at is not None
    month = business_date(outage.started_at).strftime("%Y-%m")
    url = stack.settings.database_url
    result = await _cli(url, "--month", month, "--bank", bank, "--format", "csv")
    assert result.exit_code == 0, result.output
    [row] = csv.DictReader(io.StringIO(result.output))
    minutes = outage.duration_seconds / 60
    assert (row["bank"], row["outages"]) == (bank, "1")
    assert row["minutes_down"] == f"{minutes:.2f}"
    assert row["budget_left_minutes"] == f"{float(row['budget_minutes']) - minutes:.2f}"

    # Per outage: the one payment in doubt (not the one paid before), its
    # receipt, and how long after the recovery it came.
    detail = await _cli(url, "--month", month, "--bank", bank, "--outages")
    assert detail.exit_code == 0, detail.output
    [line] = csv.DictReader(io.StringIO(detail.output))
    after = (await _issued_at(stack.engine, held) - outage.ended_at).total_seconds()
    assert (line["outage_id"], line["minutes"]) == (str(outage.id), f"{minutes:.2f}")
    assert (line["payments_in_doubt"], line["receipted"], line["still_in_doubt"]) == (
        "1",
        "1",
        "0",
    )
    assert line["slowest_receipt_after_recovery_seconds"] == f"{max(after, 0.0):.1f}"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--month", "2026-13"], "--month"),
        (["--month", "2026-1"], "--month"),
        (["--month", "\uff12\uff10\uff12\uff16-09"], "--month"),  # full-width digits
        (["--month", "1999-12"], "--month"),
        (["--month", "2026-09'; DROP TABLE bank_outages; --"], "--month"),
        (["--month", "2026-09", "--bank", "SG BANK"], "--bank"),
        (["--month", "2026-09", "--target", "100"], "--target"),
        (["--month", "2026-09", "--target", "nan"], "--target"),
        (["--month", "2026-09", "--format", "pdf"], "--format"),
    ],
)
async def test_bad_arguments_are_refused_naming_the_option(
    engine: AsyncEngine, db_url: str, args: list[str], named: str
) -> None:
    await _september(engine)
    result = await _cli(db_url, *args)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output
    still = await PostgresOutageStore(engine).recent(limit=10)
    assert len(still) == 5
