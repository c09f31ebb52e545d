"""camt.053 parser: round trips with the simulator's renderer, fuzzing,
clear errors, and hostile XML refused quickly in bounded memory."""

from __future__ import annotations

import contextlib
import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_adapters.simulators.render import SimLine, closing_balance, render_camt053
from bank_adapters.statements import StatementLimits, parse_camt053
from bank_adapters.types import Direction, StatementFormat, StatementParseError
from tests.unit.bank_adapters.strategies import (
    FUZZ,
    ROUND_TRIP,
    STATEMENT_DATE,
    free_contents,
    mutations,
    openings,
    sim_lines,
)

CREATED = datetime(2024, 5, 16, 1, 0, tzinfo=UTC)


def _render(lines: list[SimLine], opening: int = 0) -> bytes:
    return render_camt053("0011001234567", STATEMENT_DATE, opening, lines, created_at=CREATED)


def _line(ref: str, amount: int, direction: str = "C", content: str = "ND 1/QĐ") -> SimLine:
    return SimLine(
        bank_ref=ref,
        booked_at=datetime(2024, 5, 15, 3, 4, 5, tzinfo=UTC),
        amount_vnd=amount,
        direction=direction,
        counterparty="0123456789",
        content=content,
        end_to_end_ref="key-1",
    )


@ROUND_TRIP
@given(lines=sim_lines(contents=free_contents), opening=openings)
def test_round_trip(lines: list[SimLine], opening: int) -> None:
    parsed = parse_camt053(_render(lines, opening))
    assert parsed.format is StatementFormat.CAMT053
    assert parsed.account == "0011001234567"
    assert parsed.opening_balance_vnd == opening
    assert parsed.closing_balance_vnd == closing_balance(opening, lines)
    assert [
        (
            line.bank_ref,
            line.booked_at,
            line.amount_vnd,
            line.direction,
            line.counterparty,
            line.content,
            line.end_to_end_ref,
        )
        for line in parsed.lines
    ] == [
        (
            line.bank_ref,
            line.booked_at,
            line.amount_vnd,
            Direction.CREDIT if line.direction == "C" else Direction.DEBIT,
            line.counterparty,
            line.content,
            line.end_to_end_ref,
        )
        for line in lines
    ]
    for line in parsed.lines:
        assert line.booked_at.tzinfo is UTC
        assert line.raw.startswith("<Ntry>")
        assert line.raw.endswith("</Ntry>")


@FUZZ
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_only_raise_the_parse_error(data: bytes) -> None:
    with contextlib.suppress(StatementParseError):
        parse_camt053(data)


@FUZZ
@given(data=st.data(), lines=sim_lines(contents=free_contents))
def test_damaged_files_only_raise_the_parse_error(
    data: st.DataObject, lines: list[SimLine]
) -> None:
    damaged = data.draw(mutations(_render(lines)))
    error: StatementParseError | None = None
    try:
        parse_camt053(damaged)
    except StatementParseError as exc:
        error = exc
    if error is not None:
        assert error.where
        assert error.reason


def test_a_bad_entry_refuses_the_whole_file_and_names_it() -> None:
    good = [_line(f"FT{n:014d}", 1000 + n) for n in range(3)]
    data = _render(good).replace(b'<Amt Ccy="VND">1002</Amt>', b'<Amt Ccy="VND">10.5</Amt>', 1)
    with pytest.raises(StatementParseError) as caught:
        parse_camt053(data)
    assert caught.value.where.startswith("Ntry #3 (line ")
    assert "fraction" in caught.value.reason


def test_currency_other_than_vnd_is_refused() -> None:
    data = _render([_line("FT1", 5000)]).replace(b'Ccy="VND">5000', b'Ccy="USD">5000')
    with pytest.raises(StatementParseError, match="currency must be VND"):
        parse_camt053(data)


def test_balances_that_do_not_add_up_are_refused() -> None:
    data = _render([_line("FT1", 5000)]).replace(
        b">5000</Amt>\n        <CdtDbtInd>CRDT", b">6000</Amt>\n        <CdtDbtInd>CRDT", 1
    )
    with pytest.raises(StatementParseError, match="line is missing or extra"):
        parse_camt053(data)


def test_repeated_bank_reference_is_refused() -> None:
    data = _render([_line("FT1", 5000), _line("FT1", 5000)], 0)
    with pytest.raises(StatementParseError, match="repeated"):
        parse_camt053(data)


def test_pending_entries_are_not_lines() -> None:
    data = _render([_line("FT1", 5000)]).replace(b"<Cd>BOOK</Cd>", b"<Cd>PDNG</Cd>")
    data = data.replace(
        b'<Amt Ccy="VND">5000</Amt>\n        <CdtDbtInd>CRDT</CdtDbtInd>\n        <Dt>',
        b'<Amt Ccy="VND">0</Amt>\n        <CdtDbtInd>CRDT</CdtDbtInd>\n        <Dt>',
    )
    parsed = parse_camt053(data)
    assert parsed.lines == ()


def test_other_root_or_namespace_is_refused() -> None:
    with pytest.raises(StatementParseError, match="root element"):
        parse_camt053(b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.09'/>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>
<Ntry><AddtlNtryInf>&lol9;</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>
<Ntry><AddtlNtryInf>&xxe;</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/evil.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>
"""

UNDECLARED_ENTITY = b"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&xxe;</Document>
"""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BILLION_LAUGHS, "DTDs and entity declarations are refused"),
        (EXTERNAL_ENTITY, "DTDs and entity declarations are refused"),
        (EXTERNAL_DTD, "DTDs and entity declarations are refused"),
        (UNDECLARED_ENTITY, "not well-formed"),
    ],
)
def test_hostile_xml_is_refused_in_bounded_memory(data: bytes, reason: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(StatementParseError, match=reason) as caught:
            parse_camt053(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.where.startswith("line ")
    # Expanded, the bomb is 10**9 "lol"s; refused, it costs next to nothing.
    assert peak < 2 * 1024 * 1024


def test_deep_nesting_is_refused_in_bounded_memory() -> None:
    depth = 100_000
    data = (
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
        + b"<a>" * depth
        + b"</a>" * depth
        + b"</Document>"
    )
    tracemalloc.start()
    try:
        with pytest.raises(StatementParseError, match="nesting deeper than 32"):
            parse_camt053(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


def test_size_and_entry_limits() -> None:
    data = _render([_line(f"FT{n}", 1000) for n in range(5)], 0)
    with pytest.raises(StatementParseError, match="more than the limit"):
        parse_camt053(data, limits=StatementLimits(bytes_max=100))
    with pytest.raises(StatementParseError, match="more than 4 entries"):
        parse_camt053(data, limits=StatementLimits(entries_max=4))
    with pytest.raises(StatementParseError, match="more than 20 elements"):
        parse_camt053(data, limits=StatementLimits(xml_elements_max=20))
