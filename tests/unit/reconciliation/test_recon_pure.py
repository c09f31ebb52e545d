"""The pure parts of reconciliation: content keys and payment references as
the loader computes them (its fast ASCII path must give what the general rule
gives), staging rows, the rule-dependent SQL, schedules, report rendering,
allowed actions."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from bank_adapters.text import payment_reference
from bank_adapters.types import Direction, StatementLine
from domain.content import content_key, first_payment_reference, is_payment_reference
from domain.text import strip_diacritics
from ledger.reconciliation import lines, matching, runs
from ledger.reconciliation.discrepancies import Discrepancy
from ledger.reconciliation.followup import REPORT_COLUMNS, RunReport
from ledger.reconciliation.report import csv_header, csv_rows, render_report_pdf
from ledger.reconciliation.rules import RULES, MatchRule
from reconciler.api.recon_views import allowed_actions
from workflows.reconciliation.activities import payer_account
from workflows.reconciliation.client import ScheduleTimes, build_schedules, schedule_ids

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
VIETNAMESE = "ăâđêôơưĂÂĐÊÔƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
contents = st.text(
    alphabet=st.sampled_from(
        list("abcXYZ0123456789 /-.,:()TF\t\\\n") + list(VIETNAMESE) + ["\u0301", "é", "ß", "ﬁ"]
    ),
    max_size=80,
)


def _key_by_the_rule(content: str) -> str:
    """The content key as the rule says it: diacritics stripped, then only
    ASCII letters and digits kept, upper-cased (no fast path)."""
    return re.sub("[^A-Za-z0-9]", "", strip_diacritics(content)).upper()


@settings(max_examples=300, deadline=None)
@given(contents)
def test_the_content_key_is_the_rule_on_either_path(content: str) -> None:
    assert content_key(content) == _key_by_the_rule(content)
    ascii_only = content.encode("ascii", "ignore").decode("ascii")
    assert content_key(ascii_only) == _key_by_the_rule(ascii_only)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["fp-a", "fp-b", "ext-x-1"]), max_size=3), contents)
def test_the_first_payment_reference_is_the_first_valid_window_of_the_key(
    keys: list[str], noise: str
) -> None:
    key = content_key(" ".join([noise, *(payment_reference(k) for k in keys), noise]))
    windows = [key[i : i + 13] for i in range(len(key))]
    valid = [w for w in windows if is_payment_reference(w)]
    assert first_payment_reference(key) == (valid[0] if valid else None)
    if keys:
        assert first_payment_reference(key) is not None


def test_a_reference_with_a_wrong_check_character_is_not_one() -> None:
    good = payment_reference("fp-123")
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert first_payment_reference(bad) is None
    assert first_payment_reference("XX" + bad + good) == good


def test_a_staging_row_is_the_line_with_its_keys_and_no_nul() -> None:
    item = StatementLine(
        bank_ref="FT\t1",
        booked_at=NOW,
        amount_vnd=500_000,
        direction=Direction.DEBIT,
        counterparty="a\\b",
        content="Nộp phạt\n1234/QĐ",
        raw=":61:x\r\n:86:y\x00",
        end_to_end_ref="",
        source_line=7,
    )
    row = lines.staging_row(3, item)
    assert len(row) == len(lines.STAGING_TYPES)
    # Binary COPY: values as they are (no escaping), NUL replaced.
    assert row == (
        3,
        "FT\t1",
        NOW,
        500_000,
        False,
        "a\\b",
        "Nộp phạt\n1234/QĐ",
        "NOPPHAT1234QD",
        None,
        None,
        ":61:x\r\n:86:y\ufffd",
        7,
    )
    good = payment_reference("fp-1")
    credit = lines.staging_row(0, replace(item, direction=Direction.CREDIT, content=f"x {good}"))
    assert (credit[4], credit[8]) == (True, good)


def _rules(**enabled: bool) -> dict[str, MatchRule]:
    return {
        name: MatchRule(name, "*", 10 * (i + 1), enabled.get(name, True), 0, 6, "")
        for i, name in enumerate(RULES)
    }


def test_disabled_rules_leave_the_matching_sql() -> None:
    statements = matching.match_statements(_rules(end_to_end=False, refund_ref=False))
    assert "pe.debit_key" not in statements.link
    assert "journal_entries rj" not in statements.link
    assert "pp.payment_ref" in statements.link
    assert statements.params["decision_enabled"] is True
    none = matching.match_statements({k: v for k, v in _rules().items() if k == "bank_ref"})
    assert none.params["decision_enabled"] is False


def test_rule_priority_orders_the_links() -> None:
    rules = _rules()
    rules["payment_reference"] = MatchRule("payment_reference", "*", 1, True, 0, 6, "")
    link = matching.match_statements(rules).link
    assert link.index("pp.id IS NOT NULL") < link.index(
        "coalesce(s.ref_payment, px.id) IS NOT NULL"
    )


def test_schedules_per_bank_end_of_day_and_intraday() -> None:
    times = ScheduleTimes(end_of_day="23:30", intraday_minutes=10)
    schedules = build_schedules("hnbank", "q", times)
    eod_id, intraday_id = schedule_ids("hnbank")
    assert set(schedules) == {eod_id, intraday_id}
    eod = schedules[eod_id].spec
    assert eod.time_zone_name == "Asia/Ho_Chi_Minh"
    assert [r.start for r in eod.calendars[0].hour] == [23]
    assert [r.start for r in eod.calendars[0].minute] == [30]
    assert schedules[intraday_id].spec.intervals[0].every.total_seconds() == 600
    assert set(build_schedules("hnbank", "q", ScheduleTimes(intraday_minutes=0))) == {eod_id}


@pytest.mark.parametrize(
    "times",
    [{"end_of_day": "24:00"}, {"end_of_day": "7:5"}, {"intraday_minutes": -1}],
)
def test_bad_schedule_times_are_refused(times: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ScheduleTimes(**times)  # type: ignore[arg-type]


def test_csv_report_keeps_formulas_out_of_spreadsheets() -> None:
    header = csv_header()
    assert header.startswith("\ufeffrecord,bank,")
    body = csv_rows(
        [{"record": "line", "content": "=HYPERLINK(1)", "amount_vnd": 5, "in_suspense": True}]
    )
    cells = body.strip().split(",")
    assert len(cells) == len(REPORT_COLUMNS)
    assert "'=HYPERLINK(1)" in body
    assert "true" in cells


def test_csv_report_quotes_a_leading_tab_or_carriage_return() -> None:
    """Spreadsheets skip a leading tab or CR before looking for a formula."""
    for content in ("\t=cmd|' /C calc'!A0", "\r=1+1", "\t+1", "-2+3"):
        row = next(csv.reader(io.StringIO(csv_rows([{"record": "line", "content": content}]))))
        assert row[REPORT_COLUMNS.index("content")] == "'" + content
    row = next(csv.reader(io.StringIO(csv_rows([{"record": "line", "amount_vnd": -5}]))))
    assert row[REPORT_COLUMNS.index("amount_vnd")] == "-5"


def _run() -> runs.Run:
    counts = dict.fromkeys(runs.RUN_COUNT_COLUMNS, 0)
    counts.update(lines=3, matched=1, healed=1, unknown=1, credit_total_vnd=1_500_000)
    return runs.Run(
        id=7,
        bank="hnbank",
        statement_date=date(2026, 11, 23),
        source="fetch",
        trigger="api",
        requested_by="finance",
        workflow_id=None,
        import_id=None,
        status="completed",
        counts=counts,
        error=None,
        started_at=NOW,
        finished_at=NOW,
    )


def test_the_pdf_report_is_in_vietnamese() -> None:
    report = RunReport(
        run=_run(),
        by_class={"matched": (1, 500_000), "healed": (1, 500_000), "unknown": (1, 500_000)},
        by_discrepancy={"unknown": (1, 1)},
    )
    rows = [
        {
            "discrepancy_id": 1,
            "discrepancy_kind": "unknown",
            "discrepancy_status": "open",
            "amount_vnd": 500_000,
            "bank_ref": "FT1",
            "booked_at": NOW,
            "decision_number": None,
            "content": "CHUYEN TIEN",
        }
    ]
    pdf = render_report_pdf(report, rows, generated_at=NOW)
    assert pdf.startswith(b"%PDF")
    extracted = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for words in ("ĐỐI SOÁT", "Không xác định", "1.500.000 đồng", "FT1", "Chưa xử lý"):
        assert words in extracted


def _discrepancy(kind: str, status: str = "open", **detail: object) -> Discrepancy:
    return Discrepancy(
        id=1,
        reconciliation_id=1,
        bank="hnbank",
        statement_date=date(2026, 11, 23),
        kind=kind,
        statement_line_id=None if kind in ("missing_at_bank", "in_doubt_too_long") else 5,
        payment_id=uuid4() if kind == "missing_at_bank" else None,
        fine_id=None,
        decision_number=None,
        amount_vnd=1,
        status=status,
        detail=dict(detail),
        created_at=NOW,
        updated_at=NOW,
        resolved_at=None,
        resolved_by=None,
        resolution=None,
        bank_ref="FT1",
        line_class=kind,
        in_suspense=True,
    )


def test_actions_depend_on_what_the_discrepancy_is() -> None:
    assert allowed_actions(_discrepancy("unknown", direction="credit")) == [
        "request_refund",
        "request_manual_match",
        "dismiss",
    ]
    assert allowed_actions(_discrepancy("unknown", direction="debit")) == ["dismiss"]
    auto = _discrepancy("duplicate", direction="credit", automatic_action="external_debit")
    assert allowed_actions(auto) == ["dismiss"]
    assert allowed_actions(_discrepancy("missing_at_bank")) == ["dismiss"]
    assert allowed_actions(_discrepancy("unknown", "dismissed", direction="credit")) == []


def test_refunds_go_only_to_a_real_account() -> None:
    assert payer_account("0123456789") == "0123456789"
    assert payer_account("") == "unknown"
    assert payer_account("NGUYEN VAN A") == "unknown"
