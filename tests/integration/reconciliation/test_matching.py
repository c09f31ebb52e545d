"""Matching and classification of statement lines on the real PostgreSQL:
every class, content as banks mangle it, rules as data, suspense postings,
discrepancies, and re-runs that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bank_adapters.types import Direction
from ledger import payments as pay
from ledger.core.errors import ValidationError
from ledger.core.postings import (
    EntryRequest,
    Posting,
    balances,
    bank_clearing_account,
    post_entry,
    posting_sums,
)
from ledger.reconciliation import payment_checks as checks
from ledger.reconciliation import rules
from ledger.reconciliation.discrepancies import (
    DiscrepancyFilter,
    get_discrepancy,
    list_discrepancies,
    note_request,
)
from ledger.reconciliation.followup import finish_run
from ledger.reconciliation.runs import RUN_COUNT_COLUMNS
from tests.support.ledger import make_fine
from tests.support.recon import (
    BANK,
    NOW,
    bank_ref,
    discrepancies,
    line,
    lines_by_ref,
    new_payment,
    open_run,
    qr_content,
    reconcile,
    snapshot,
)


async def test_a_booked_payment_is_matched_by_its_bank_reference(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1001/QĐ-XPHC", 500_000)
    payment = await new_payment(engine, fine, "succeeded", bank_ref_value="FT1")
    _run, summary = await reconcile(engine, [line(500_000, "whatever the bank wrote", ref="FT1")])
    row = (await lines_by_ref(engine))["FT1"]
    assert _class(row) == "matched"
    assert row.rule == "bank_ref"
    assert row.payment_id == payment.id
    assert not row.in_suspense
    assert summary.classes == {"matched": 1}
    assert await discrepancies(engine) == []


def _class(row: object) -> str:
    return str(row._mapping["class"])  # type: ignore[attr-defined]


async def test_our_key_echoed_by_the_bank_matches(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1002/QĐ-XPHC", 500_000)
    payment = await new_payment(engine, fine, "succeeded", bank_ref_value="FT2")
    rule = await _rules_only(engine, "end_to_end")
    await reconcile(engine, [line(500_000, ref="FT2", end_to_end_ref=payment.debit_key)])
    row = (await lines_by_ref(engine))["FT2"]
    assert (_class(row), row.rule, row.payment_id) == ("matched", rule, payment.id)


async def _rules_only(engine: AsyncEngine, *keep: str) -> str:
    """Switch every rule off for the bank but ``keep`` (rules are data)."""
    async with engine.begin() as conn:
        for rule in rules.RULES:
            await rules.set_rule(conn, BANK, rule, enabled=rule in keep)
    return keep[0]


async def test_a_verifying_payment_found_by_its_qr_reference_is_healed_by_signal(
    engine: AsyncEngine,
) -> None:
    fine = await make_fine(engine, "1003/QĐ-XPHC", 500_000)
    payment = await new_payment(engine, fine, "verifying")
    content = qr_content(payment)
    assert content.startswith("TF")
    _run, summary = await reconcile(engine, [line(500_000, content, ref="FT3")])
    row = (await lines_by_ref(engine))["FT3"]
    assert (_class(row), row.rule, row.action) == ("healed", "payment_reference", "signal")
    assert row.payment_id == payment.id
    assert row.fine_id == fine.id
    assert summary.discrepancies_opened == 0


@pytest.mark.parametrize(
    "content",
    [
        "nộp phạt 1004/QĐ-XPHC Nguyễn Văn A",  # as typed, with diacritics
        "NOP PHAT 1004 QD XPHC NGUYEN VAN A",  # without diacritics and slash
        "1004QDXPHC",  # everything stripped
        "MBVCB.3278614.nop phat qd so 1004/qd-xphc",  # bank prefix, lower case
        "CHUYEN TIEN NOP PHAT VI PHAM GIAO THONG 1004 QD XP",  # cut by the bank
    ],
)
async def test_a_citizen_transfer_naming_the_decision_is_healed(
    engine: AsyncEngine, content: str
) -> None:
    fine = await make_fine(engine, "1004/QĐ-XPHC", 750_000)
    await reconcile(engine, [line(750_000, content, ref="FT4")])
    row = (await lines_by_ref(engine))["FT4"]
    assert (_class(row), row.rule, row.action) == ("healed", "decision_number", "external_debit")
    assert row.fine_id == fine.id
    assert row.payment_id is None
    assert not row.in_suspense


async def test_truncation_must_leave_enough_of_the_decision_number(engine: AsyncEngine) -> None:
    await make_fine(engine, "1005/QĐ-XPHC", 750_000)
    # "1005Q" is five characters of the key: too little to tell fines apart.
    await reconcile(engine, [line(750_000, "NOP PHAT 1005 Q", ref="FT5")])
    row = (await lines_by_ref(engine))["FT5"]
    assert (_class(row), row.fine_id, row.in_suspense) == ("unknown", None, True)


async def test_a_declined_payment_whose_money_arrived_is_healed(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1006/QĐ-XPHC", 500_000)
    payment = await new_payment(engine, fine, "declined")
    await reconcile(engine, [line(500_000, qr_content(payment), ref="FT6")])
    row = (await lines_by_ref(engine))["FT6"]
    assert (_class(row), row.action, row.payment_id) == ("healed", "external_debit", payment.id)


async def test_a_second_transfer_for_a_paid_fine_is_an_exact_duplicate_refunded_automatically(
    engine: AsyncEngine,
) -> None:
    fine = await make_fine(engine, "1007/QĐ-XPHC", 500_000)
    await new_payment(engine, fine, "succeeded", bank_ref_value="FT7A")
    await reconcile(
        engine,
        [line(500_000, ref="FT7A"), line(500_000, "NOP PHAT 1007 QD XPHC", ref="FT7B")],
    )
    rows = await lines_by_ref(engine)
    assert _class(rows["FT7A"]) == "matched"
    dup = rows["FT7B"]
    assert (_class(dup), dup.action, dup.in_suspense) == ("duplicate", "external_debit", False)
    [found] = await discrepancies(engine)
    assert (found.kind, found.status, found.statement_line_id) == ("duplicate", "open", dup.id)
    assert found.detail["automatic_action"] == "external_debit"


async def test_a_duplicate_from_an_unknown_account_goes_to_finance(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1008/QĐ-XPHC", 500_000)
    await new_payment(engine, fine, "succeeded")
    await reconcile(engine, [line(500_000, "1008/QD-XPHC", ref="FT8", counterparty="")])
    row = (await lines_by_ref(engine))["FT8"]
    # Nowhere to send a refund: no automatic action, the money waits in suspense.
    assert (_class(row), row.action, row.in_suspense) == ("duplicate", None, True)


async def test_the_bank_booking_our_debit_twice_makes_the_second_a_duplicate(
    engine: AsyncEngine,
) -> None:
    fine = await make_fine(engine, "1009/QĐ-XPHC", 500_000)
    payment = await new_payment(engine, fine, "succeeded", bank_ref_value="FT9A")
    await reconcile(
        engine,
        [
            line(500_000, ref="FT9A", end_to_end_ref=payment.debit_key),
            line(500_000, ref="FT9B", end_to_end_ref=payment.debit_key),
        ],
    )
    rows = await lines_by_ref(engine)
    assert _class(rows["FT9A"]) == "matched"
    assert (_class(rows["FT9B"]), rows["FT9B"].rule) == ("duplicate", "end_to_end")
    assert rows["FT9B"].action == "external_debit"


async def test_two_transfers_for_one_unpaid_fine_heal_once(engine: AsyncEngine) -> None:
    await make_fine(engine, "1010/QĐ-XPHC", 500_000)
    first = NOW - timedelta(hours=2)
    await reconcile(
        engine,
        [
            line(500_000, "NOP PHAT 1010/QD", ref="FT10B", booked_at=first + timedelta(minutes=1)),
            line(500_000, "1010 QD XPHC", ref="FT10A", booked_at=first),
        ],
    )
    rows = await lines_by_ref(engine)
    assert _class(rows["FT10A"]) == "healed"  # the earlier booking pays the fine
    assert (_class(rows["FT10B"]), rows["FT10B"].action) == ("duplicate", "external_debit")


async def test_the_wrong_amount_is_a_mismatch_held_in_suspense(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1011/QĐ-XPHC", 500_000)
    await reconcile(engine, [line(450_000, "nop phat 1011/QD-XPHC", ref="FT11")])
    row = (await lines_by_ref(engine))["FT11"]
    assert (_class(row), row.fine_id, row.action, row.in_suspense) == (
        "amount_mismatch",
        fine.id,
        None,
        True,
    )
    [found] = await discrepancies(engine)
    assert (found.kind, found.amount_vnd, found.fine_id) == ("amount_mismatch", 450_000, fine.id)


async def test_a_tolerance_is_data_and_never_moves_money_automatically(
    engine: AsyncEngine,
) -> None:
    await make_fine(engine, "1012/QĐ-XPHC", 500_000)
    async with engine.begin() as conn:
        await rules.set_rule(conn, BANK, "decision_number", amount_tolerance_vnd=10_000)
    await reconcile(engine, [line(495_000, "1012/QD-XPHC", ref="FT12")])
    row = (await lines_by_ref(engine))["FT12"]
    # Identified within tolerance, but not the fine's amount: finance decides.
    assert (_class(row), row.action, row.in_suspense) == ("amount_mismatch", None, True)


async def test_unknown_money_goes_to_suspense_with_one_entry_per_bank_reference(
    engine: AsyncEngine,
) -> None:
    await make_fine(engine, "1013/QĐ-XPHC", 500_000)
    await reconcile(
        engine,
        [
            line(123_000, "CHUYEN TIEN", ref="FT13A"),
            line(22_000, "PHI QUAN LY TAI KHOAN", ref="FT13B", direction=Direction.DEBIT),
        ],
    )
    rows = await lines_by_ref(engine)
    assert {_class(r) for r in rows.values()} == {"unknown"}
    assert all(r.in_suspense for r in rows.values())
    async with engine.connect() as conn:
        held = await balances(conn, ["suspense", bank_clearing_account(BANK)])
        assert held == {"suspense": -123_000 + 22_000, bank_clearing_account(BANK): 101_000}
        assert await balances(conn) == await posting_sums(conn)
    assert [d.kind for d in await discrepancies(engine)] == ["unknown", "unknown"]
    # The entry is the one any other part of the service would book for it.
    async with engine.begin() as conn:
        again = await post_entry(
            conn,
            EntryRequest(
                idempotency_key=f"suspense:{BANK}:FT13A",
                kind="suspense",
                postings=(
                    Posting(bank_clearing_account(BANK), 123_000),
                    Posting("suspense", -123_000),
                ),
            ),
        )
    assert not again.created


async def test_ambiguous_content_is_left_to_finance(engine: AsyncEngine) -> None:
    await make_fine(engine, "1014/QĐ-XPHC", 500_000)
    await make_fine(engine, "1014/QĐ-XPVPHC", 500_000)
    # Cut after "1014QDXP": both decision numbers start that way.
    await reconcile(engine, [line(500_000, "NOP PHAT 1014 QD XP", ref="FT14")])
    row = (await lines_by_ref(engine))["FT14"]
    assert (_class(row), row.fine_id) == ("unknown", None)


async def test_the_longest_decision_number_wins(engine: AsyncEngine) -> None:
    await make_fine(engine, "15/QĐ-XPHC", 500_000)
    long = await make_fine(engine, "115/QĐ-XPHC", 500_000)
    await reconcile(engine, [line(500_000, "nop phat 115/QD-XPHC", ref="FT15")])
    row = (await lines_by_ref(engine))["FT15"]
    assert (_class(row), row.fine_id) == ("healed", long.id)


async def test_a_disabled_rule_identifies_nothing(engine: AsyncEngine) -> None:
    await make_fine(engine, "1016/QĐ-XPHC", 500_000)
    await _rules_only(engine, "bank_ref", "end_to_end", "payment_reference", "refund_ref")
    await reconcile(engine, [line(500_000, "1016/QD-XPHC", ref="FT16")])
    assert _class((await lines_by_ref(engine))["FT16"]) == "unknown"


async def test_our_refund_on_the_statement_is_matched(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1017/QĐ-XPHC", 500_000)
    await new_payment(engine, fine, "succeeded", bank_ref_value="FT17A")
    async with engine.begin() as conn:
        duplicate, _ = await pay.record_external_debit(
            conn, fine, BANK, "FT17B", 500_000, "123", NOW, "test"
        )
        await pay.settle_payment(conn, duplicate.id, "FT17B", NOW, "test")
        await pay.mark_refunded(conn, duplicate.id, "RF17", NOW)
    await reconcile(
        engine,
        [
            line(500_000, ref="FT17A"),
            line(500_000, ref="FT17B"),
            line(500_000, "HOAN TIEN FT17B", ref="RF17", direction=Direction.DEBIT),
        ],
    )
    rows = await lines_by_ref(engine)
    assert _class(rows["FT17A"]) == "matched"
    assert (_class(rows["FT17B"]), rows["FT17B"].action) == ("duplicate", None)
    assert (_class(rows["RF17"]), rows["RF17"].rule) == ("matched", "refund_ref")
    assert not any(r.in_suspense for r in rows.values())
    # The refunded duplicate's discrepancy closes itself.
    [found] = await discrepancies(engine)
    assert (found.kind, found.status) == ("duplicate", "resolved")


async def test_a_payment_the_bank_does_not_have_is_missing_until_its_line_arrives(
    engine: AsyncEngine,
) -> None:
    fine = await make_fine(engine, "1018/QĐ-XPHC", 500_000)
    earlier = NOW - timedelta(hours=2)
    payment = await new_payment(engine, fine, "succeeded", bank_ref_value="FT18", now=earlier)
    await reconcile(engine, [line(1_000, "CHUYEN TIEN")])
    missing = [d for d in await discrepancies(engine) if d.kind == "missing_at_bank"]
    assert [(d.payment_id, d.status) for d in missing] == [(payment.id, "open")]
    # The bank books it late: the next statement has it, the discrepancy closes.
    await reconcile(engine, [line(500_000, ref="FT18")], now=NOW + timedelta(hours=1))
    [closed] = [d for d in await discrepancies(engine) if d.kind == "missing_at_bank"]
    assert (closed.status, closed.resolved_by) == ("resolved", checks.SYSTEM_ACTOR)


async def test_a_payment_debited_within_the_grace_period_is_not_missing_yet(
    engine: AsyncEngine,
) -> None:
    fine = await make_fine(engine, "1019/QĐ-XPHC", 500_000)
    await new_payment(engine, fine, "succeeded", now=NOW - timedelta(minutes=5))
    await reconcile(engine, [], policy=checks.MatchPolicy(missing_grace_seconds=1800))
    assert await discrepancies(engine) == []


async def test_a_payment_in_doubt_too_long_opens_a_discrepancy(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1020/QĐ-XPHC", 500_000)
    payment = await new_payment(engine, fine, "verifying", now=NOW - timedelta(hours=3))
    await reconcile(engine, [], policy=checks.MatchPolicy(in_doubt_seconds=3600))
    [found] = await discrepancies(engine)
    assert (found.kind, found.payment_id, found.status) == ("in_doubt_too_long", payment.id, "open")


async def test_only_the_discrepancies_that_resolved_themselves_are_closed(
    engine: AsyncEngine,
) -> None:
    """One of each kind that closes itself, next to one of each that does not."""
    policy = checks.MatchPolicy(in_doubt_seconds=3600, missing_grace_seconds=1800)
    earlier = NOW - timedelta(hours=3)
    fines = [await make_fine(engine, f"{1040 + i}/QĐ-XPHC", 500_000) for i in range(4)]
    doubts = [await new_payment(engine, f, "verifying", now=earlier) for f in fines[:2]]
    arrives = await new_payment(engine, fines[2], "succeeded", bank_ref_value="FT40A", now=earlier)
    never = await new_payment(engine, fines[3], "succeeded", bank_ref_value="FT40B", now=earlier)
    await reconcile(engine, [line(1_000, "CHUYEN TIEN", ref="FT40X")], policy=policy)
    watched = ("in_doubt_too_long", "missing_at_bank")
    found = [d for d in await discrepancies(engine) if d.kind in watched]
    opened = {(d.kind, d.payment_id): d.status for d in found}
    assert opened == {
        ("in_doubt_too_long", doubts[0].id): "open",
        ("in_doubt_too_long", doubts[1].id): "open",
        ("missing_at_bank", arrives.id): "open",
        ("missing_at_bank", never.id): "open",
    }
    # One doubt ends, one missing debit arrives; the others stay as they were.
    async with engine.begin() as conn:
        await pay.settle_payment(conn, doubts[0].id, "FT40C", NOW, "test")
    _run, summary = await reconcile(
        engine,
        [line(500_000, ref="FT40A"), line(500_000, ref="FT40C")],
        now=NOW + timedelta(hours=1),
        policy=policy,
    )
    assert summary.auto_resolved == 2
    found = [d for d in await discrepancies(engine) if d.kind in watched]
    closed = {(d.kind, d.payment_id): (d.status, d.resolution) for d in found}
    assert closed == {
        ("in_doubt_too_long", doubts[0].id): ("resolved", "the payment is no longer in doubt"),
        ("in_doubt_too_long", doubts[1].id): ("open", None),
        ("missing_at_bank", arrives.id): ("resolved", "the bank's statement now has the debit"),
        ("missing_at_bank", never.id): ("open", None),
    }


async def _lines_the_planner_believes_gone(engine: AsyncEngine, owner: AsyncEngine) -> None:
    """Paid fines, their lines and a duplicate discrepancy for each line,
    then what a VACUUM during a load leaves: no tuples on the lines' pages."""
    async with engine.begin() as conn:
        run, statement_import = await open_run(conn, [])
        # A ledger of paid fines, larger than the lines (as in service).
        await conn.execute(
            text(
                "INSERT INTO fines (decision_number, decision_key, amount_vnd, violator_name,"
                "                   plate, issuing_unit, violation)"
                " SELECT 'P' || i, 'P' || i, 1000, 'x', 'x', 'x', 'x'"
                "   FROM generate_series(1, 6000) AS i"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO payments (id, fine_id, bank, payer_account, amount_vnd, status,"
                "                      debit_key, settles_fine, bank_ref, debited_at)"
                " SELECT gen_random_uuid(), id, :bank, '1', 1000, 'succeeded', 'k' || id, true,"
                "        'PB' || id, :now"
                "   FROM fines"
            ),
            {"bank": BANK, "now": NOW},
        )
        await conn.execute(
            text(
                "INSERT INTO statement_lines (import_id, reconciliation_id, bank, bank_ref,"
                " statement_date, booked_at, amount_vnd, direction, class, decided_at)"
                " SELECT :import_id, :rid, :bank, 'FT' || i, :day, :now, 1000, 'credit',"
                "        'duplicate', :now"
                "   FROM generate_series(1, 3000) AS i"
            ),
            {
                "import_id": statement_import.id,
                "rid": run.id,
                "bank": BANK,
                "day": run.statement_date,
                "now": NOW,
            },
        )
        await conn.execute(
            text(
                "INSERT INTO discrepancies (reconciliation_id, bank, statement_date, kind,"
                "                           statement_line_id, amount_vnd)"
                " SELECT reconciliation_id, bank, statement_date, 'duplicate', id, amount_vnd"
                "   FROM statement_lines"
            )
        )
    # VACUUM and the catalogue are the owner's (the app's role may do neither).
    async with owner.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE fines, payments, statement_lines, discrepancies"))
        # What that VACUUM leaves: the table's pages, and no tuples on them.
        await conn.execute(
            text("UPDATE pg_class SET reltuples = 0 WHERE oid = 'statement_lines'::regclass")
        )


@pytest.mark.parametrize("nested_loops", ["on", "off"])
async def test_closing_what_resolved_itself_looks_lines_up_by_index_whatever_the_statistics(
    engine: AsyncEngine, owner_engine: AsyncEngine, nested_loops: str
) -> None:
    """A VACUUM that runs while a load's lines are still uncommitted counts
    no tuples over their pages, and the planner then believes
    ``statement_lines`` empty however many lines it holds. ``auto_resolve``
    must still look lines up by index, per open discrepancy: a scan of all
    the lines as the outer side of a join, matched against every open
    discrepancy, ran for hours at a million lines (bench/recon.py); a
    merge join of one payment against a whole-index scan of the lines, per
    discrepancy, failed CI once. With nested loops priced out, the planner
    picks such joins wherever a join exists: the plan must have none to
    pick."""
    await _lines_the_planner_believes_gone(engine, owner_engine)
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL enable_nestloop = {nested_loops}"))
        plan = (
            await conn.execute(
                text("EXPLAIN (FORMAT JSON) " + checks.AUTO_RESOLVE_SQL),
                {"bank": BANK, "now": NOW, "actor": checks.SYSTEM_ACTOR},
            )
        ).scalar_one()

    def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if node.get("Relation Name") == "statement_lines":
            yield node
        for child in node.get("Plans", []):
            yield from scans(child)

    found = list(scans(plan[0]["Plan"]))
    assert found, "the plan reads no statement line"
    for node in found:
        assert "Index Cond" in node or "Recheck Cond" in node, (
            f"{node['Node Type']} of statement_lines without a key lookup"
        )


async def test_reimporting_the_same_statement_changes_nothing(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "1021/QĐ-XPHC", 500_000)
    paid = await make_fine(engine, "1022/QĐ-XPHC", 600_000)
    await new_payment(engine, paid, "succeeded", bank_ref_value="FT22")
    lines = [
        line(500_000, "nop phat 1021 QD XPHC"),
        line(600_000, ref="FT22"),
        line(600_000, "1022/QD-XPHC"),
        line(10_000, "CHUYEN TIEN"),
        line(5_000, "PHI", direction=Direction.DEBIT),
    ]
    _run, first = await reconcile(engine, lines)
    assert first.new_lines == 5
    before = await snapshot(engine)
    # The same file again, and the same lines in another file (another digest).
    _run, again = await reconcile(engine, lines)
    _run, other_file = await reconcile(engine, list(reversed(lines)), sha="f" * 64)
    assert (again.already_loaded, again.new_lines) == (True, 0)
    assert (other_file.already_loaded, other_file.new_lines) == (False, 0)
    assert await snapshot(engine) == before
    assert fine.id in {r.fine_id for r in (await lines_by_ref(engine)).values()}


async def test_a_file_naming_one_reference_twice_is_refused_whole(engine: AsyncEngine) -> None:
    ref = bank_ref()
    with pytest.raises(ValidationError, match="appears twice"):
        await reconcile(engine, [line(1_000, ref=ref), line(2_000, ref=ref)])
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM statement_lines"))).scalar_one()
    assert count == 0


async def test_runs_discrepancies_and_rules_read_back_as_written(engine: AsyncEngine) -> None:
    """One mapper per table: a finished run's totals in their columns'
    order, a discrepancy with the requests noted on it, a bank's own rule
    over the ``*`` one, rules in name order."""
    run, _summary = await reconcile(engine, [line(12_345, "CHUYEN TIEN")])
    async with engine.begin() as conn:
        finished = await finish_run(conn, run.id, NOW)
        [found], _next = await list_discrepancies(
            conn, DiscrepancyFilter(bank=BANK, kind="unknown", status="open")
        )
        for approval_id in (7, 8):
            await note_request(conn, found.id, {"approval_id": approval_id}, NOW)
        noted = await get_discrepancy(conn, found.id)
        await rules.set_rule(conn, BANK, "decision_number", amount_tolerance_vnd=500)
        in_force = await rules.load_rules(conn, BANK)
        elsewhere = await rules.load_rules(conn, "otherbank")
    assert list(finished.counts) == list(RUN_COUNT_COLUMNS)
    assert all(type(value) is int for value in finished.counts.values())
    assert (finished.status, finished.counts["lines"], finished.counts["unknown"]) == (
        "completed",
        1,
        1,
    )
    assert [r["approval_id"] for r in noted.detail["requests"]] == [7, 8]
    assert (noted.bank_ref, noted.line_class, noted.in_suspense) == (
        found.bank_ref,
        "unknown",
        True,
    )
    assert list(in_force) == sorted(rules.RULES)
    assert (in_force["decision_number"].bank, in_force["decision_number"].amount_tolerance_vnd) == (
        BANK,
        500,
    )
    assert elsewhere["decision_number"].bank == "*"
