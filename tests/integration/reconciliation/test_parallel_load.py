"""A big statement's lines other than the plain booked ones are classified
and written by a helper connection, committed on their own: a failure after
that commit and before the main transaction's leaves a state that a re-run
completes, each line once, with the same summary as a clean run.

The tests take the split path with a few lines (``LoadTuning``) and step in
at the load's ``LoadPoint``s through its probe: to fail it there, to hold
one connection until the other has done something, or to see which
connection did what."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from psycopg.errors import QueryCanceled
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bank_adapters.types import StatementLine
from ledger.core.errors import ValidationError
from ledger.fines import Fine
from ledger.payments import Payment
from ledger.reconciliation.lines import own_row
from ledger.reconciliation.load import MatchSummary, load_and_match
from ledger.reconciliation.tuning import LoadPoint, LoadTuning
from tests.support.ledger import make_fine
from tests.support.recon import (
    DAY,
    NOW,
    line,
    new_payment,
    reconcile,
    run_and_import,
    snapshot,
)

# The split path from one line on.
SPLIT = LoadTuning(parallel_lines_min=1)
# What a test does at a load point: (point, "main" or "helper", connection).
OnPoint = Callable[[LoadPoint, str, AsyncConnection], Awaitable[None]]


async def booked_lines(
    engine: AsyncEngine, number: int, count: int = 1
) -> list[tuple[StatementLine, Payment]]:
    """``count`` fines, each paid by a payment, and the line that books it."""
    booked = []
    for i in range(count):
        fine = await make_fine(engine, f"{number + i}/QĐ-XPHC", 300_000)
        payment = await new_payment(engine, fine, "succeeded")
        booked.append((line(300_000, "x", ref=payment.bank_ref), payment))
    return booked


async def booked_and_absent(engine: AsyncEngine, number: int) -> tuple[Fine, Payment, Payment]:
    """A fine paid by a payment its line books, and a payment no line of the
    statement will have (both two hours old: past the grace period)."""
    earlier = NOW - timedelta(hours=2)
    paid = await make_fine(engine, f"{number}/QĐ-XPHC", 300_000)
    booked = await new_payment(engine, paid, "succeeded", now=earlier)
    absent_fine = await make_fine(engine, f"{number + 1}/QĐ-XPHC", 200_000)
    absent = await new_payment(engine, absent_fine, "succeeded", now=earlier)
    return paid, booked, absent


async def _load(
    engine: AsyncEngine,
    run: Any,
    statement_import: Any,
    lines: list[Any],
    on_point: OnPoint | None = None,
    tuning: LoadTuning = SPLIT,
    timings: dict[str, float] | None = None,
) -> MatchSummary:
    async with engine.begin() as main:

        async def probe(point: LoadPoint, conn: AsyncConnection) -> None:
            if on_point is not None:
                await on_point(point, "main" if conn is main else "helper", conn)

        return await load_and_match(
            main, run, statement_import, lines, NOW, timings=timings, tuning=tuning, probe=probe
        )


def fail_at(at: LoadPoint, where: str, message: str) -> OnPoint:
    async def on_point(point: LoadPoint, who: str, _conn: AsyncConnection) -> None:
        if (point, who) == (at, where):
            raise RuntimeError(message)

    return on_point


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def loaded_at(engine: AsyncEngine, import_id: int) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT loaded_at FROM statement_imports WHERE id = :id"), {"id": import_id}
            )
        ).scalar_one()


async def test_a_failure_after_the_helper_committed_is_completed_by_a_rerun(
    engine: AsyncEngine,
) -> None:
    booked = await booked_lines(engine, 8100, 3)
    lines = [*(x for x, _ in booked), line(12_345, "CHUYEN TIEN"), line(45_000, "PHI")]
    run, statement_import = await run_and_import(engine, lines)
    # Closing what resolved itself comes after the helper has committed.
    with pytest.raises(RuntimeError, match="worker lost"):
        crash = fail_at(LoadPoint.AUTO_RESOLVE, "main", "worker lost")
        await _load(engine, run, statement_import, lines, crash)
    async with engine.connect() as conn:
        written = (await conn.execute(text("SELECT bank_ref, class FROM statement_lines"))).all()
    assert sorted(written) == sorted((x.bank_ref, "unknown") for x in lines[3:])
    assert await loaded_at(engine, statement_import.id) is None

    summary = await _load(engine, run, statement_import, lines)
    assert summary.new_lines == len(lines)
    assert summary.classes == {"matched": 3, "unknown": 2}
    async with engine.connect() as conn:
        refs = (await conn.execute(text("SELECT bank_ref FROM statement_lines"))).scalars().all()
    assert Counter(refs) == Counter(x.bank_ref for x in lines)
    assert await count(engine, "discrepancies") == 2

    before = await snapshot(engine)
    again = await _load(engine, run, statement_import, lines)
    assert again.new_lines == 0
    assert await snapshot(engine) == before


async def test_a_failure_of_the_helper_fails_the_load_and_writes_nothing(
    engine: AsyncEngine,
) -> None:
    [(booked, _)] = await booked_lines(engine, 8200)
    lines = [booked, line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)
    with pytest.raises(RuntimeError, match="helper lost"):
        lost = fail_at(LoadPoint.CLASSIFY, "helper", "helper lost")
        await _load(engine, run, statement_import, lines, lost)
    assert await count(engine, "statement_lines") == 0
    summary = await _load(engine, run, statement_import, lines)
    assert summary.classes == {"matched": 1, "unknown": 1}


@pytest.mark.parametrize("where", ["main", "helper"])
async def test_a_statement_past_the_timeout_fails_the_load_and_writes_nothing(
    engine: AsyncEngine, where: str
) -> None:
    """A plan gone wrong cannot hold the bank's lock for long: on either
    connection, a statement past ``LoadTuning.statement_timeout`` is
    cancelled and the load fails whole."""
    # The main connection before its decision, or the helper before its
    # first step: a statement that would take seconds.
    slow_at = LoadPoint.DECIDE if where == "main" else LoadPoint.CLASSIFY

    async def slow(point: LoadPoint, who: str, conn: AsyncConnection) -> None:
        if (point, who) == (slow_at, where):
            await conn.execute(text("SELECT pg_sleep(5)"))

    [(booked, _)] = await booked_lines(engine, 8250)
    lines = [booked, line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)
    tuning = LoadTuning(parallel_lines_min=1, statement_timeout="200ms")
    # Raised by SQLAlchemy, or by psycopg itself for the statements sent on
    # the driver's connection (COPY, the decision's binary result).
    with pytest.raises((DBAPIError, QueryCanceled), match="statement timeout"):
        await _load(engine, run, statement_import, lines, slow, tuning)
    assert (await count(engine, "statement_lines"), await count(engine, "discrepancies")) == (0, 0)


@pytest.mark.parametrize("run_committed", [True, False], ids=["helper", "same-connection"])
async def test_the_split_path_writes_every_class_and_finds_the_payments_missing_at_the_bank(
    engine: AsyncEngine, run_committed: bool
) -> None:
    """The split path (keys staged, plain lines by COPY): with the run
    committed the other lines go to the helper; with the run still in the
    caller's transaction this connection classifies them itself."""
    paid, booked, absent = await booked_and_absent(engine, 8300)
    unpaid = await make_fine(engine, "8302/QĐ-XPHC", 150_000)
    lines = [
        line(300_000, "x", ref=booked.bank_ref),
        line(150_000, "nop phat 8302 QD XPHC"),
        line(12_345, "CHUYEN TIEN"),
    ]
    if run_committed:
        run, statement_import = await run_and_import(engine, lines)
        summary = await _load(engine, run, statement_import, lines)
    else:
        _, summary = await reconcile(engine, lines, tuning=SPLIT)
    assert summary.classes == {"matched": 1, "healed": 1, "unknown": 1}
    assert summary.missing_at_bank_opened == 1
    async with engine.connect() as conn:
        written = {
            r.bank_ref: r
            for r in await conn.execute(
                text("SELECT bank_ref, class, payment_id, fine_id, rule FROM statement_lines")
            )
        }
        found = (await conn.execute(text("SELECT kind, payment_id FROM discrepancies"))).all()
    plain = written[booked.bank_ref]
    assert plain[1] == "matched"
    assert (plain.payment_id, plain.fine_id, plain.rule) == (booked.id, paid.id, "bank_ref")
    assert written[lines[1].bank_ref][1] == "healed"
    assert written[lines[1].bank_ref].fine_id == unpaid.id
    assert Counter(kind for kind, _ in found) == Counter({"unknown": 1, "missing_at_bank": 1})
    assert [p for kind, p in found if kind == "missing_at_bank"] == [absent.id]


@pytest.mark.parametrize("first_free", ["main", "helper"])
async def test_the_connection_free_first_looks_for_the_payments_missing_at_the_bank_once(
    engine: AsyncEngine, first_free: str
) -> None:
    _fine, booked, absent = await booked_and_absent(engine, 8350)
    lines = [line(300_000, "x", ref=booked.bank_ref), line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)
    looked: list[str] = []
    missing_done = asyncio.Event()

    async def on_point(point: LoadPoint, who: str, _conn: AsyncConnection) -> None:
        if point is LoadPoint.MISSING_AT_BANK:
            looked.append(who)
        elif point is LoadPoint.MISSING_AT_BANK_DONE:
            missing_done.set()
        # The other connection is held back until the payments are looked for.
        elif (point, who, first_free) in (
            (LoadPoint.CLASSIFY, "helper", "main"),
            (LoadPoint.COPY_PLAIN, "main", "helper"),
        ):
            await asyncio.wait_for(missing_done.wait(), 30)

    summary = await _load(engine, run, statement_import, lines, on_point)
    assert looked == [first_free]
    assert summary.missing_at_bank_opened == 1
    assert summary.classes == {"matched": 1, "unknown": 1}
    async with engine.connect() as conn:
        missing = (
            await conn.execute(
                text("SELECT payment_id FROM discrepancies WHERE kind = 'missing_at_bank'")
            )
        ).all()
    assert [m.payment_id for m in missing] == [absent.id]


@pytest.mark.parametrize("kind", ["plain", "other"])
async def test_a_line_loaded_under_another_date_is_known_all_the_same(
    engine: AsyncEngine, kind: str
) -> None:
    """The split path looks for known lines among a day's statements either
    side of this one; a line the bank put on an older statement too (the
    plain lines' COPY or the helper's insert then hits the unique index)
    makes the load start again from its savepoint, looking among all the
    bank's lines. The line is stored once, and counted as the older load's."""
    [(booked, _)] = await booked_lines(engine, 8450)
    other = line(12_345, "CHUYEN TIEN")
    earlier = booked if kind == "plain" else other
    await reconcile(engine, [earlier], day=DAY - timedelta(days=5), tuning=SPLIT)
    lines = [booked, other, line(45_000, "PHI")]
    run, statement_import = await run_and_import(engine, lines)
    stages: dict[str, float] = {}
    summary = await _load(engine, run, statement_import, lines, timings=stages)
    assert "known_elsewhere" in stages  # the first look missed it
    assert summary.new_lines == len(lines) - 1
    async with engine.connect() as conn:
        refs = (await conn.execute(text("SELECT bank_ref FROM statement_lines"))).scalars().all()
    assert Counter(refs) == Counter(x.bank_ref for x in lines)


@pytest.mark.parametrize("split", [True, False], ids=["split-path", "small-path"])
@pytest.mark.parametrize("fault", ["reference-twice", "too-many-lines"])
async def test_a_bad_statement_is_refused_on_either_path_and_writes_nothing(
    engine: AsyncEngine, split: bool, fault: str
) -> None:
    [(booked, _)] = await booked_lines(engine, 8400)
    lines = [booked, line(12_345, "CHUYEN TIEN")]
    tuning = LoadTuning(parallel_lines_min=1 if split else 1_000)
    if fault == "reference-twice":
        lines.append(line(45_000, "PHI", ref=lines[1].bank_ref))
        expected = f"bank reference {lines[1].bank_ref!r} appears twice"
    else:
        tuning = LoadTuning(parallel_lines_min=tuning.parallel_lines_min, lines_per_statement_max=1)
        expected = "more than 1 lines"
    run, statement_import = await run_and_import(engine, lines)
    before = await snapshot(engine)
    with pytest.raises(ValidationError, match=expected) as refused:
        await _load(engine, run, statement_import, lines, tuning=tuning)
    assert refused.value.field == "statement"
    assert await snapshot(engine) == before
    assert await loaded_at(engine, statement_import.id) is None


async def test_the_helper_shares_the_plain_lines_and_a_rerun_counts_the_ones_it_committed(
    engine: AsyncEngine,
) -> None:
    """Plain lines are handed out a slice at a time to whichever connection
    asks first. Here the main connection waits until the helper has asked,
    so the helper writes them all (and commits them with its own lines);
    then the main transaction fails, and the re-run counts them as its own."""
    booked = await booked_lines(engine, 8500, 5)
    lines = [*(x for x, _ in booked), line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)
    callers: list[str] = []
    helper_asked = asyncio.Event()

    async def main_waits_for_the_helper(point: LoadPoint, who: str, _conn: Any) -> None:
        if point is LoadPoint.COPY_PLAIN:
            callers.append(who)
            if who == "main":
                await asyncio.wait_for(helper_asked.wait(), 30)
            else:
                helper_asked.set()
        elif point is LoadPoint.AUTO_RESOLVE:
            raise RuntimeError("worker lost")

    tuning = LoadTuning(parallel_lines_min=1, plain_slice_lines=2)
    with pytest.raises(RuntimeError, match="worker lost"):
        await _load(engine, run, statement_import, lines, main_waits_for_the_helper, tuning)
    assert callers == ["main", "helper"]
    async with engine.connect() as conn:
        committed = {
            r.bank_ref: r
            for r in await conn.execute(
                text("SELECT bank_ref, class, payment_id, fine_id FROM statement_lines")
            )
        }
    # The helper's transaction holds every plain line, written matched.
    assert set(committed) == {x.bank_ref for x in lines}
    for x, payment in booked:
        assert committed[x.bank_ref][1] == "matched"
        assert (committed[x.bank_ref].payment_id, committed[x.bank_ref].fine_id) == (
            payment.id,
            payment.fine_id,
        )

    summary = await _load(engine, run, statement_import, lines, tuning=tuning)
    assert summary.new_lines == len(lines)
    assert summary.classes == {"matched": 5, "unknown": 1}
    assert await count(engine, "statement_lines") == len(lines)


async def test_the_split_path_stores_each_line_s_own_fields_as_they_are(
    engine: AsyncEngine,
) -> None:
    """Every line's own fields are formatted once, in one buffer, a
    thousand lines at a time, and cut out by where each line ends:
    Vietnamese text (several bytes a character), a NUL, no end-to-end
    reference, a long content, each stored for its own line, across the
    thousand-line joins and a last, shorter batch."""
    booked = await booked_lines(engine, 8600, 2)
    odd = [
        line(10_000, "Nộp phạt 8600/QĐ-XPHC Nguyễn Văn Đức", counterparty="Trần Thị B"),
        line(20_000, "có\x00NUL", end_to_end_ref="E2E-1"),
        line(30_000, f"TF {'x' * 300} ₫ ", end_to_end_ref=""),
    ]
    noise = [line(1_000 + i, f"chuyển tiền {i}" if i % 3 else "CK") for i in range(2_340)]
    lines = [booked[0][0], *noise[:997], *odd, *noise[997:], booked[1][0]]
    run, statement_import = await run_and_import(engine, lines)
    await _load(engine, run, statement_import, lines)
    async with engine.connect() as conn:
        stored = {
            r.bank_ref: r
            for r in await conn.execute(
                text(
                    "SELECT bank_ref, booked_at, amount_vnd, counterparty, content, content_key,"
                    " content_ref, end_to_end_ref, raw, source_line FROM statement_lines"
                )
            )
        }
    assert len(stored) == len(lines)
    for item in lines:
        values, _ = own_row(item)
        assert tuple(stored[values[0]]) == values
    assert stored[odd[1].bank_ref].content == "có\ufffdNUL"
