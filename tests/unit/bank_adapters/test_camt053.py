"""camt.053 parser: round trips with the simulator's renderer, fuzzing,
clear errors, and hostile XML refused quickly in bounded memory."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import given

from bank_adapters.simulators.render import SimLine, closing_balance, render_camt053
from bank_adapters.statements import StatementLimits, parse_camt053
from bank_adapters.types import StatementFormat, StatementParseError
from tests.unit.bank_adapters.strategies import (
    ROUND_TRIP,
    STATEMENT_DATE,
    free_contents,
    openings,
    read_rows,
    sim_lines,
    sim_rows,
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
    assert read_rows(parsed.lines, "end_to_end_ref") == sim_rows(lines, "end_to_end_ref")
    for line in parsed.lines:
        assert line.booked_at.tzinfo is UTC
        assert line.raw.startswith("<Ntry>")
        assert line.raw.endswith("</Ntry>")


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


def _statement(
    entries: str, opening: int = 0, closing: int | None = None, encoding: str = ""
) -> str:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n' if encoding else ""
    balances = ""
    if closing is not None:
        balances = "".join(
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="VND">{abs(value)}</Amt>'
            f"<CdtDbtInd>{'CRDT' if value >= 0 else 'DBIT'}</CdtDbtInd></Bal>"
            for code, value in (("OPBD", opening), ("CLBD", closing))
        )
    return (
        f'{declaration}<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
        "<BkToCstmrStmt><Stmt><Id>STMT-1</Id>"
        "<Acct><Id><Othr><Id>0011001234567</Id></Othr></Id></Acct>"
        f"{balances}{entries}</Stmt></BkToCstmrStmt></Document>"
    )


def _entry(inner: str = "", amount: int = 5000, mark: str = "CRDT", status: str = "BOOK") -> str:
    sts = f"<Sts><Cd>{status}</Cd></Sts>" if status else ""
    return (
        f'<Ntry><Amt Ccy="VND">{amount}</Amt><CdtDbtInd>{mark}</CdtDbtInd>{sts}'
        f"<BookgDt><Dt>2024-05-15</Dt></BookgDt>{inner}</Ntry>"
    )


def _tx(refs: str = "", amount: int | None = None, remittance: str = "") -> str:
    amt = f'<Amt Ccy="VND">{amount}</Amt>' if amount is not None else ""
    return f"<TxDtls><Refs>{refs}</Refs>{amt}{remittance}</TxDtls>"


@pytest.mark.parametrize(
    ("inner", "bank_ref"),
    [
        ("<AcctSvcrRef>E1</AcctSvcrRef><NtryDtls>" + _tx("<TxId>T1</TxId>") + "</NtryDtls>", "E1"),
        (
            "<NtryRef>N1</NtryRef><NtryDtls>"
            + _tx("<AcctSvcrRef>A1</AcctSvcrRef><TxId>T1</TxId>")
            + "</NtryDtls>",
            "A1",
        ),
        ("<NtryRef>N1</NtryRef><NtryDtls>" + _tx("<TxId>T1</TxId>") + "</NtryDtls>", "T1"),
        ("<NtryRef>N1</NtryRef><NtryDtls>" + _tx("<UETR>U1</UETR>") + "</NtryDtls>", "U1"),
        (
            "<NtryRef>N1</NtryRef><NtryDtls>" + _tx("<EndToEndId>K1</EndToEndId>") + "</NtryDtls>",
            "STMT-1/N1",
        ),
    ],
)
def test_bank_reference_fallbacks_in_order(inner: str, bank_ref: str) -> None:
    [line] = parse_camt053(_statement(_entry(inner)).encode()).lines
    assert line.bank_ref == bank_ref


def test_without_any_reference_a_stable_one_is_derived() -> None:
    data = _statement(_entry() + _entry()).encode()
    first, second = parse_camt053(data).lines
    assert first.bank_ref.startswith("CAMT-")
    assert second.bank_ref == first.bank_ref + "-2"
    assert parse_camt053(data).lines[0].bank_ref == first.bank_ref


def test_a_batch_entry_is_one_line_per_transaction() -> None:
    batch = _entry(
        "<AcctSvcrRef>B1</AcctSvcrRef><NtryDtls>"
        + _tx("<TxId>T1</TxId>", 3000, "<RmtInf><Ustrd>FIRST</Ustrd></RmtInf>")
        + _tx("", 1500)
        + _tx("", 500)
        + "</NtryDtls>"
    )
    lines = parse_camt053(_statement(batch, 0, 5000).encode()).lines
    assert [(line.bank_ref, line.amount_vnd, line.content) for line in lines] == [
        ("T1", 3000, "FIRST"),
        ("B1:2", 1500, ""),
        ("B1:3", 500, ""),
    ]
    assert {line.source_line for line in lines} == {1}


def test_a_batch_whose_parts_do_not_add_up_is_refused_naming_the_entry() -> None:
    batch = _entry("<NtryDtls>" + _tx("", 3000) + _tx("", 1000) + "</NtryDtls>")
    with pytest.raises(StatementParseError) as caught:
        parse_camt053(_statement(batch).encode())
    assert caught.value.where == "Ntry #1 (line 1) NtryDtls"
    assert "add up to 4000 đồng, the entry's Amt to 5000" in caught.value.reason
    missing = _entry("<NtryDtls>" + _tx("", 5000) + _tx() + "</NtryDtls>")
    with pytest.raises(StatementParseError, match="AmtDtls/TxAmt/Amt missing") as caught:
        parse_camt053(_statement(missing).encode())
    assert caught.value.where == "Ntry #1 (line 1) TxDtls #2"


def test_structured_remittance_is_the_content_when_there_is_no_unstructured() -> None:
    strd = (
        "<RmtInf><Strd><RfrdDocInf><Nb>INV-7</Nb></RfrdDocInf>"
        "<CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf>"
    )
    entry = _entry("<NtryDtls>" + _tx("<TxId>T1</TxId>", None, strd) + "</NtryDtls>")
    [line] = parse_camt053(_statement(entry).encode()).lines
    assert line.content == "RF18539007547034 INV-7"
    info = _entry(
        "<NtryDtls>" + _tx("<TxId>T2</TxId>") + "</NtryDtls><AddtlNtryInf>FEE</AddtlNtryInf>"
    )
    [line] = parse_camt053(_statement(info).encode()).lines
    assert line.content == "FEE"


def test_entry_status_missing_is_booked_and_unknown_is_refused() -> None:
    [line] = parse_camt053(_statement(_entry(status="")).encode()).lines
    assert line.amount_vnd == 5000
    with pytest.raises(StatementParseError, match="unknown entry status 'XXXX'"):
        parse_camt053(_statement(_entry(status="XXXX")).encode())
    assert parse_camt053(_statement(_entry(amount=0)).encode()).lines == ()


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "windows-1252", "ISO-8859-15"])
def test_declared_single_byte_encodings_are_read(encoding: str) -> None:
    remittance = "<RmtInf><Ustrd>Zahlung für</Ustrd></RmtInf>"
    text = _statement(
        _entry("<NtryDtls>" + _tx("<TxId>T1</TxId>", None, remittance) + "</NtryDtls>"),
        encoding=encoding,
    )
    [line] = parse_camt053(text.encode("latin-1")).lines
    assert line.content == "Zahlung für"


def test_utf16_with_bom_is_read_and_undeclared_encodings_refused() -> None:
    text = _statement(_entry("<AcctSvcrRef>E1</AcctSvcrRef>"), encoding="UTF-16")
    [line] = parse_camt053(text.encode("utf-16")).lines
    assert line.bank_ref == "E1"
    with pytest.raises(StatementParseError) as caught:
        parse_camt053(_statement(_entry(), encoding="EBCDIC-CP-US").encode())
    assert caught.value.where == "line 1 (XML declaration)"
    assert "'EBCDIC-CP-US' is not supported" in caught.value.reason
    with pytest.raises(StatementParseError, match="not valid US-ASCII text") as caught:
        parse_camt053(_statement(_entry(), encoding="US-ASCII").encode() + b"\xe9")
    assert caught.value.where == "line 2"
