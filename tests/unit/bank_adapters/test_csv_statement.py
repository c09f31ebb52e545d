"""CSV statement parser: round trips, fuzzing, errors naming line and column."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_adapters.simulators.render import SimLine, render_csv
from bank_adapters.statements import StatementLimits, parse_csv_statement
from bank_adapters.types import Direction, StatementParseError
from tests.unit.bank_adapters.strategies import (
    ROUND_TRIP,
    assert_refused,
    bank_contents,
    free_contents,
    read_rows,
    sim_lines,
    sim_rows,
)

GOOD = (
    "bank_ref,booked_at,direction,amount_vnd,counterparty,content\r\n"
    "QR1,2024-05-15T10:04:05+07:00,C,500000,0123456789,TFXYUXIVDJPDH 1234QDXPVPHC\r\n"
    'QR2,2024-05-15T11:00:00+07:00,D,200000,0123456789,"HOAN TIEN, TFXYUXIVDJPDH"\r\n'
)


def test_parses_a_known_statement() -> None:
    parsed = parse_csv_statement(GOOD.encode())
    first, second = parsed.lines
    assert (first.bank_ref, first.amount_vnd, first.direction, first.booked_at) == (
        "QR1",
        500_000,
        Direction.CREDIT,
        datetime(2024, 5, 15, 3, 4, 5, tzinfo=UTC),
    )
    assert second.content == "HOAN TIEN, TFXYUXIVDJPDH"
    assert second.source_line == 3
    assert second.raw.startswith("QR2,")
    assert parsed.opening_balance_vnd is None


def test_columns_may_come_in_any_order_with_a_bom() -> None:
    data = (
        "\ufeffcontent,amount_vnd,direction,booked_at,bank_ref,counterparty\n"
        "x,5,C,2024-05-15T10:00:00+07:00,R1,\n"
    )
    [line] = parse_csv_statement(data.encode()).lines
    assert (line.bank_ref, line.amount_vnd, line.content, line.counterparty) == ("R1", 5, "x", "")


@pytest.mark.parametrize(
    ("broken", "where", "reason"),
    [
        (GOOD.replace("500000", "500000.5"), "line 2, column amount_vnd", "whole number"),
        (GOOD.replace("500000", "-5"), "line 2, column amount_vnd", "whole number"),
        (GOOD.replace("500000", "0"), "line 2, column amount_vnd", "outside"),
        (GOOD.replace(",D,", ",X,"), "line 3, column direction", "C or D"),
        (
            GOOD.replace("2024-05-15T10:04:05", "2024-13-15T10:04:05"),
            "line 2, column booked_at",
            "ISO",
        ),
        (GOOD.replace("QR2,", ""), "line 3", "expected 6 fields"),
        (GOOD.replace("QR2", "QR1"), "entry #2 (line 3)", "repeated"),
        (GOOD.replace("amount_vnd", "amount"), "line 1 (header)", "missing ['amount_vnd']"),
        (GOOD + '"unterminated,\r\n', "line 4", "bad CSV"),
        ("", "file", "empty"),
    ],
)
def test_errors_name_line_and_column(broken: str, where: str, reason: str) -> None:
    assert_refused(parse_csv_statement, broken.encode(), where, reason)


def test_limits() -> None:
    with pytest.raises(StatementParseError, match="more than 1 rows"):
        parse_csv_statement(GOOD.encode(), limits=StatementLimits(entries_max=1))


@ROUND_TRIP
@given(lines=sim_lines(contents=st.one_of(bank_contents, free_contents)))
def test_round_trip(lines: list[SimLine]) -> None:
    assert read_rows(parse_csv_statement(render_csv(lines)).lines) == sim_rows(lines)
