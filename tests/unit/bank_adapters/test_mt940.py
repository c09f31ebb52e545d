"""MT940 parser: round trips, agreement with the mt-940 package, fuzzing,
and errors that name the line."""

from __future__ import annotations

import contextlib
import io
from contextlib import redirect_stdout
from datetime import UTC, datetime
from decimal import Decimal

import mt940
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_adapters.simulators.render import SimLine, closing_balance, render_mt940
from bank_adapters.statements import StatementLimits, parse_mt940
from bank_adapters.statements.common import vietnam_day_start_utc
from bank_adapters.types import Direction, StatementFormat, StatementParseError
from tests.unit.bank_adapters.strategies import (
    FUZZ,
    ROUND_TRIP,
    STATEMENT_DATE,
    bank_contents,
    mutations,
    openings,
    sim_lines,
)

GOOD = (
    ":20:STMT240515\r\n"
    ":25:0011001234567\r\n"
    ":28C:00136/1\r\n"
    ":60F:C240515VND1000000,\r\n"
    ":61:2405150515C500000,NTRFNONREF//QR24051500000001\r\n"
    "0123456789\r\n"
    ":86:TFXYUXIVDJPDH 1234QDXPVPHC\r\n"
    ":61:2405150515D200000,NTRFNONREF//QR24051500000002\r\n"
    "0123456789\r\n"
    ":86:HOAN TIEN TFXYUXIVDJPDH\r\n"
    ":62F:C240515VND1300000,\r\n"
    "-\r\n"
)


def test_parses_a_known_statement() -> None:
    parsed = parse_mt940(GOOD.encode())
    assert parsed.format is StatementFormat.MT940
    assert (parsed.account, parsed.opening_balance_vnd, parsed.closing_balance_vnd) == (
        "0011001234567",
        1_000_000,
        1_300_000,
    )
    first, second = parsed.lines
    assert (first.bank_ref, first.amount_vnd, first.direction) == (
        "QR24051500000001",
        500_000,
        Direction.CREDIT,
    )
    assert first.counterparty == "0123456789"
    assert first.content == "TFXYUXIVDJPDH 1234QDXPVPHC"
    assert first.booked_at == datetime(2024, 5, 14, 17, 0, tzinfo=UTC)
    assert first.booking_date == STATEMENT_DATE
    assert first.source_line == 5
    assert first.raw.startswith(":61:240515")
    assert second.direction is Direction.DEBIT


@pytest.mark.parametrize(
    ("broken", "where", "reason"),
    [
        (GOOD.replace("C500000,NTRF", "C500000NTRF"), "line 5 (:61:)", "must be YYMMDD"),
        (GOOD.replace("C500000,NTRF", "C500000,50NTRF"), "line 5 (:61:)", "fraction"),
        (GOOD.replace("240515VND1000000", "240515USD1000000"), "line 4 (:60F:)", "VND"),
        (GOOD.replace("1300000,", "1300001,"), "line 11 (:62F:)", "missing or extra"),
        (GOOD.replace(":28C:", ":99:"), "line 3", "unknown tag :99:"),
        (GOOD.replace(":25:0011001234567\r\n", ""), "line 2 (:28C:)", "expected the account"),
        (GOOD.replace("2405150515C5", "2413450515C5"), "line 5 (:61:)", "not a date"),
        (GOOD.replace("//QR24051500000002", ""), "line 8 (:61:) bank reference", "missing"),
        ("junk\r\n" + GOOD, "line 1", "text before the first tag"),
        (GOOD.replace(":62F:C240515VND1300000,\r\n", ""), "end of file", "closing"),
    ],
)
def test_errors_name_the_line(broken: str, where: str, reason: str) -> None:
    with pytest.raises(StatementParseError) as caught:
        parse_mt940(broken.encode())
    assert caught.value.where == where
    assert reason in caught.value.reason


def test_non_utf8_names_the_line() -> None:
    with pytest.raises(StatementParseError) as caught:
        parse_mt940(GOOD.encode().replace(b"HOAN", b"HO\xffN"))
    assert caught.value.where == "line 10"


def test_limits() -> None:
    with pytest.raises(StatementParseError, match="more than the limit"):
        parse_mt940(GOOD.encode(), limits=StatementLimits(bytes_max=50))
    with pytest.raises(StatementParseError, match="more than 1 entries"):
        parse_mt940(GOOD.encode(), limits=StatementLimits(entries_max=1))


def test_consecutive_statements_must_chain() -> None:
    second = GOOD.replace("1000000,", "1300000,", 1).replace("1300000,\r\n-", "1600000,\r\n-")
    second = second.replace("QR2405150000000", "QR2405150000009")
    parsed = parse_mt940((GOOD + second).encode())
    assert len(parsed.lines) == 4
    assert parsed.closing_balance_vnd == 1_600_000
    gap = second.replace(":60F:C240515VND1300000,", ":60F:C240515VND1200000,")
    with pytest.raises(StatementParseError, match="a statement is missing"):
        parse_mt940((GOOD + gap.replace("1600000,", "1500000,")).encode())


@ROUND_TRIP
@given(lines=sim_lines(contents=bank_contents), opening=openings)
def test_round_trip(lines: list[SimLine], opening: int) -> None:
    parsed = parse_mt940(render_mt940("0011001234567", STATEMENT_DATE, opening, lines))
    assert parsed.opening_balance_vnd == opening
    assert parsed.closing_balance_vnd == closing_balance(opening, lines)
    # MT940 carries the booking date only.
    assert [
        (
            line.bank_ref,
            line.booked_at,
            line.amount_vnd,
            line.direction,
            line.counterparty,
            line.content,
        )
        for line in parsed.lines
    ] == [
        (
            line.bank_ref,
            vietnam_day_start_utc(STATEMENT_DATE),
            line.amount_vnd,
            Direction.CREDIT if line.direction == "C" else Direction.DEBIT,
            line.counterparty,
            line.content,
        )
        for line in lines
    ]


@ROUND_TRIP
@given(lines=sim_lines(contents=bank_contents), opening=openings)
def test_the_mt940_package_reads_the_same_amounts(lines: list[SimLine], opening: int) -> None:
    data = render_mt940("0011001234568", STATEMENT_DATE, opening, lines)
    with redirect_stdout(io.StringIO()):
        transactions = mt940.parse(data)
    theirs = [
        (t.data["bank_reference"], t.data["amount"].amount, t.data["amount"].currency)
        for t in transactions
    ]
    ours = [
        (
            line.bank_ref,
            Decimal(line.amount_vnd if line.direction is Direction.CREDIT else -line.amount_vnd),
            "VND",
        )
        for line in parse_mt940(data).lines
    ]
    assert [(ref, amount) for ref, amount, _ in theirs] == [
        (ref, amount) for ref, amount, _ in ours
    ]


@FUZZ
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_only_raise_the_parse_error(data: bytes) -> None:
    with contextlib.suppress(StatementParseError):
        parse_mt940(data)


@FUZZ
@given(text=st.text(alphabet=":0123456789CDRNTFVD,/\r\n -ABXYZ", max_size=600))
def test_tag_shaped_text_only_raises_the_parse_error(text: str) -> None:
    with contextlib.suppress(StatementParseError):
        parse_mt940(text.encode())


@FUZZ
@given(data=st.data(), lines=sim_lines(contents=bank_contents))
def test_damaged_files_only_raise_the_parse_error(
    data: st.DataObject, lines: list[SimLine]
) -> None:
    damaged = data.draw(mutations(render_mt940("0011001234567", STATEMENT_DATE, 0, lines)))
    error: StatementParseError | None = None
    try:
        parse_mt940(damaged)
    except StatementParseError as exc:
        error = exc
    if error is not None:
        assert error.where
        assert error.reason
