"""A big statement's lines other than the plain booked ones are classified
and written by a helper connection, committed on their own: a failure after
that commit and before the main transaction's leaves a state that a re-run
completes, each line once, with the same summary as a clean run."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from psycopg.errors import QueryCanceled
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.errors import ValidationError
from ledger.fines import Fine
from ledger.payments.lifecycle import Payment
from ledger.reconciliation import bulk_load, matching, payment_checks, tuning
from ledger.reconciliation import lines as recon_lines
from ledger.reconciliation import load as recon
from tests.support.ledger import make_fine
from tests.support.recon import DAY, NOW, line, new_payment, open_run, reconcile, snapshot


class _Patch:
    """Interim: sets a name in every load module that has it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.m = monkeypatch

    def setattr(self, _module: object, name: str, value: object) -> None:
        aliases = {
            "_DECIDE_SQL": "_DECIDE_SQL",
            "_DECISION_SQL": "_DECISION_SQL",
            "_missing_at_bank": "missing_at_bank",
            "_classify_rest": "classify_rest",
            "_classify_on_helper": "_classify_on_helper",
            "_copy_plain": "_copy_plain",
        }
        name = aliases.get(name, name)
        for module in (recon, bulk_load, recon_lines, matching, payment_checks, tuning):
            if hasattr(module, name):
                self.m.setattr(module, name, value)


async def run_and_import(engine: AsyncEngine, lines: list[Any]) -> tuple[Any, Any]:
    # As the activity does: the run and the import committed before the load.
    async with engine.begin() as conn:
        return await open_run(conn, lines)


async def booked_and_absent(engine: AsyncEngine, number: int) -> tuple[Fine, Payment, Payment]:
    """A fine paid by a payment its line books, and a payment no line of the
    statement will have (both two hours old: past the grace period)."""
    earlier = NOW - timedelta(hours=2)
    paid = await make_fine(engine, f"{number}/QĐ-XPHC", 300_000)
    booked = await new_payment(engine, paid, "succeeded", now=earlier)
    absent_fine = await make_fine(engine, f"{number + 1}/QĐ-XPHC", 200_000)
    absent = await new_payment(engine, absent_fine, "succeeded", now=earlier)
    return paid, booked, absent


async def _load(engine: AsyncEngine, run: Any, statement_import: Any, lines: list[Any]) -> Any:
    async with engine.begin() as conn:
        return await recon.load_and_match(conn, run, statement_import, lines, NOW)


async def test_a_failure_after_the_helper_committed_is_completed_by_a_rerun(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1)
    booked = []
    for i in range(3):
        fine = await make_fine(engine, f"{8100 + i}/QĐ-XPHC", 300_000)
        payment = await new_payment(engine, fine, "succeeded")
        booked.append(line(300_000, "x", ref=payment.bank_ref))
    lines = [*booked, line(12_345, "CHUYEN TIEN"), line(45_000, "PHI")]
    run, statement_import = await run_and_import(engine, lines)

    async def crash(*_args: Any) -> int:
        raise RuntimeError("worker lost")

    # auto_resolve runs after the helper has committed.
    with monkeypatch.context() as patched:
        _Patch(patched).setattr(recon, "auto_resolve", crash)
        with pytest.raises(RuntimeError, match="worker lost"):
            await _load(engine, run, statement_import, lines)
    async with engine.connect() as conn:
        written = (await conn.execute(text("SELECT bank_ref, class FROM statement_lines"))).all()
        loaded = (
            await conn.execute(
                text("SELECT loaded_at FROM statement_imports WHERE id = :id"),
                {"id": statement_import.id},
            )
        ).scalar_one()
    assert sorted(written) == sorted((x.bank_ref, "unknown") for x in lines[3:])
    assert loaded is None

    summary = await _load(engine, run, statement_import, lines)
    assert summary.new_lines == len(lines)
    assert summary.classes == {"matched": 3, "unknown": 2}
    async with engine.connect() as conn:
        refs = (await conn.execute(text("SELECT bank_ref FROM statement_lines"))).scalars().all()
        opened = (await conn.execute(text("SELECT count(*) FROM discrepancies"))).scalar_one()
    assert Counter(refs) == Counter(x.bank_ref for x in lines)
    assert opened == 2

    before = await snapshot(engine)
    again = await _load(engine, run, statement_import, lines)
    assert again.new_lines == 0
    assert await snapshot(engine) == before


async def test_a_failure_of_the_helper_fails_the_load_and_writes_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1)
    fine = await make_fine(engine, "8200/QĐ-XPHC", 300_000)
    payment = await new_payment(engine, fine, "succeeded")
    lines = [line(300_000, "x", ref=payment.bank_ref), line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)

    async def broken(*_args: Any) -> Any:
        raise RuntimeError("helper lost")

    with monkeypatch.context() as patched:
        _Patch(patched).setattr(recon, "_classify_on_helper", broken)
        with pytest.raises(RuntimeError, match="helper lost"):
            await _load(engine, run, statement_import, lines)
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM statement_lines"))).scalar_one()
    assert count == 0
    summary = await _load(engine, run, statement_import, lines)
    assert summary.classes == {"matched": 1, "unknown": 1}


@pytest.mark.parametrize("where", ["main", "helper"])
async def test_a_statement_past_the_timeout_fails_the_load_and_writes_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A plan gone wrong cannot hold the bank's lock for long: on either
    connection, a statement past ``STATEMENT_TIMEOUT`` is cancelled and the
    load fails whole."""
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1)
    _Patch(monkeypatch).setattr(recon, "STATEMENT_TIMEOUT", "200ms")
    if where == "main":  # the decision, before the helper starts
        _Patch(monkeypatch).setattr(recon, "_DECIDE_SQL", "SELECT pg_sleep(5)")
    else:
        _Patch(monkeypatch).setattr(
            recon,
            "_DECISION_SQL",
            "CREATE TEMP TABLE recon_decisions ON COMMIT DROP AS"
            " SELECT NULL::integer AS pos, NULL::bigint AS fine_id FROM pg_sleep(5)",
        )
    fine = await make_fine(engine, "8250/QĐ-XPHC", 300_000)
    payment = await new_payment(engine, fine, "succeeded")
    lines = [line(300_000, "x", ref=payment.bank_ref), line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)
    # Raised by SQLAlchemy, or by psycopg itself for the statements sent on
    # the driver's connection (COPY, the decision's binary result).
    with pytest.raises((DBAPIError, QueryCanceled), match="statement timeout"):
        await _load(engine, run, statement_import, lines)
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM statement_lines"))).scalar_one()
        opened = (await conn.execute(text("SELECT count(*) FROM discrepancies"))).scalar_one()
    assert (count, opened) == (0, 0)


@pytest.mark.parametrize("run_committed", [True, False], ids=["helper", "same-connection"])
async def test_the_split_path_writes_every_class_and_finds_the_payments_missing_at_the_bank(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, run_committed: bool
) -> None:
    """The split path (keys staged, plain lines by COPY): with the run
    committed the other lines go to the helper; with the run still in the
    caller's transaction this connection classifies them itself."""
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1)
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
        _, summary = await reconcile(engine, lines)
    assert summary.classes == {"matched": 1, "healed": 1, "unknown": 1}
    assert summary.missing_at_bank_opened == 1
    async with engine.connect() as conn:
        written = {
            r.bank_ref: r
            for r in await conn.execute(
                text("SELECT bank_ref, class, payment_id, fine_id, rule FROM statement_lines")
            )
        }
        kinds = Counter(
            (await conn.execute(text("SELECT kind FROM discrepancies"))).scalars().all()
        )
        missing_payment = (
            await conn.execute(
                text("SELECT payment_id FROM discrepancies WHERE kind = 'missing_at_bank'")
            )
        ).scalar_one()
    plain = written[booked.bank_ref]
    assert plain[1] == "matched"
    assert (plain.payment_id, plain.fine_id, plain.rule) == (booked.id, paid.id, "bank_ref")
    assert written[lines[1].bank_ref][1] == "healed"
    assert written[lines[1].bank_ref].fine_id == unpaid.id
    assert kinds == Counter({"unknown": 1, "missing_at_bank": 1})
    assert missing_payment == absent.id


@pytest.mark.parametrize("first_free", ["main", "helper"])
async def test_the_connection_free_first_looks_for_the_payments_missing_at_the_bank_once(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, first_free: str
) -> None:
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1)
    _fine, booked, absent = await booked_and_absent(engine, 8350)
    lines = [line(300_000, "x", ref=booked.bank_ref), line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)

    real_missing, real_classify, real_copy_plain = (
        recon.missing_at_bank,
        bulk_load.classify_rest,
        bulk_load._copy_plain,
    )
    looked: list[str] = []
    missing_done = asyncio.Event()
    async with engine.begin() as main:

        def who(conn: Any) -> str:
            return "main" if conn is main else "helper"

        async def missing_at_bank(conn: Any, *args: Any, **kwargs: Any) -> int:
            looked.append(who(conn))
            found: int = await real_missing(conn, *args, **kwargs)
            missing_done.set()
            return found

        async def classify_rest(conn: Any, *args: Any) -> Any:
            if first_free == "main" and who(conn) == "helper":
                await asyncio.wait_for(missing_done.wait(), 30)
            return await real_classify(conn, *args)

        async def copy_plain(conn: Any, *args: Any) -> None:
            if first_free == "helper" and who(conn) == "main":
                await asyncio.wait_for(missing_done.wait(), 30)
            await real_copy_plain(conn, *args)

        _Patch(monkeypatch).setattr(recon, "_missing_at_bank", missing_at_bank)
        _Patch(monkeypatch).setattr(recon, "_classify_rest", classify_rest)
        _Patch(monkeypatch).setattr(recon, "_copy_plain", copy_plain)
        summary = await recon.load_and_match(main, run, statement_import, lines, NOW)
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
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The split path looks for known lines among a day's statements either
    side of this one; a line the bank put on an older statement too (the
    plain lines' COPY or the helper's insert then hits the unique index)
    makes the load start again from its savepoint, looking among all the
    bank's lines. The line is stored once, and counted as the older load's."""
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1)
    fine = await make_fine(engine, "8450/QĐ-XPHC", 300_000)
    payment = await new_payment(engine, fine, "succeeded")
    booked = line(300_000, "x", ref=payment.bank_ref)
    other = line(12_345, "CHUYEN TIEN")
    earlier = booked if kind == "plain" else other
    await reconcile(engine, [earlier], day=DAY - timedelta(days=5))
    lines = [booked, other, line(45_000, "PHI")]
    run, statement_import = await run_and_import(engine, lines)
    stages: dict[str, float] = {}
    async with engine.begin() as conn:
        summary = await recon.load_and_match(
            conn, run, statement_import, lines, NOW, timings=stages
        )
    assert "known_elsewhere" in stages  # the first look missed it
    assert summary.new_lines == len(lines) - 1
    async with engine.connect() as conn:
        refs = (await conn.execute(text("SELECT bank_ref FROM statement_lines"))).scalars().all()
    assert Counter(refs) == Counter(x.bank_ref for x in lines)


@pytest.mark.parametrize("split", [True, False], ids=["split-path", "small-path"])
@pytest.mark.parametrize("fault", ["reference-twice", "too-many-lines"])
async def test_a_bad_statement_is_refused_on_either_path_and_writes_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, split: bool, fault: str
) -> None:
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1 if split else 1_000)
    fine = await make_fine(engine, "8400/QĐ-XPHC", 300_000)
    payment = await new_payment(engine, fine, "succeeded")
    lines = [line(300_000, "x", ref=payment.bank_ref), line(12_345, "CHUYEN TIEN")]
    if fault == "reference-twice":
        lines.append(line(45_000, "PHI", ref=lines[1].bank_ref))
        expected = f"bank reference {lines[1].bank_ref!r} appears twice"
    else:
        _Patch(monkeypatch).setattr(recon, "LINES_PER_STATEMENT_MAX", 1)
        expected = "more than 1 lines"
    run, statement_import = await run_and_import(engine, lines)
    before = await snapshot(engine)
    with pytest.raises(ValidationError, match=expected) as refused:
        await _load(engine, run, statement_import, lines)
    assert refused.value.field == "statement"
    assert await snapshot(engine) == before
    async with engine.connect() as conn:
        loaded = (
            await conn.execute(
                text("SELECT loaded_at FROM statement_imports WHERE id = :id"),
                {"id": statement_import.id},
            )
        ).scalar_one()
    assert loaded is None


async def test_the_helper_shares_the_plain_lines_and_a_rerun_counts_the_ones_it_committed(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain lines are handed out a slice at a time to whichever connection
    asks first. Here the main connection waits until the helper has asked,
    so the helper writes them all (and commits them with its own lines);
    then the main transaction fails, and the re-run counts them as its own."""
    _Patch(monkeypatch).setattr(recon, "PARALLEL_LINES_MIN", 1)
    _Patch(monkeypatch).setattr(recon, "PLAIN_SLICE_LINES", 2)
    booked = []
    for i in range(5):
        fine = await make_fine(engine, f"{8500 + i}/QĐ-XPHC", 300_000)
        payment = await new_payment(engine, fine, "succeeded")
        booked.append((line(300_000, "x", ref=payment.bank_ref), payment))
    lines = [*(x for x, _ in booked), line(12_345, "CHUYEN TIEN")]
    run, statement_import = await run_and_import(engine, lines)

    real_copy_plain = bulk_load._copy_plain
    callers: list[str] = []
    helper_asked = asyncio.Event()

    async def main_waits_for_the_helper(*args: Any) -> None:
        if not callers:  # the main connection asks first, at once
            callers.append("main")
            await asyncio.wait_for(helper_asked.wait(), 30)
        else:
            callers.append("helper")
            helper_asked.set()
        await real_copy_plain(*args)

    async def crash(*_args: Any) -> int:
        raise RuntimeError("worker lost")

    with monkeypatch.context() as patched:
        _Patch(patched).setattr(recon, "_copy_plain", main_waits_for_the_helper)
        _Patch(patched).setattr(recon, "auto_resolve", crash)
        with pytest.raises(RuntimeError, match="worker lost"):
            await _load(engine, run, statement_import, lines)
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

    summary = await _load(engine, run, statement_import, lines)
    assert summary.new_lines == len(lines)
    assert summary.classes == {"matched": 5, "unknown": 1}
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM statement_lines"))).scalar_one()
    assert count == len(lines)
