"""MT940 parser: round trips, agreement with the mt-940 package, what real
banks send (envelope, headers, optional sub-fields, long :86:), fuzzing, and
errors that name the line and the sub-field."""

from __future__ import annotations

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
from bank_adapters.statements.mt940_fields import join_wrapped
from bank_adapters.types import Direction, StatementFormat, StatementParseError
from tests.unit.bank_adapters.strategies import (
    FUZZ,
    ROUND_TRIP,
    STATEMENT_DATE,
    account_numbers,
    assert_refused,
    bank_contents,
    only_clean_refusals,
    openings,
    read_rows,
    sim_lines,
    sim_rows,
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


def _one_entry(entry: str, details: str = ":86:X\n", amount: str = "500000,") -> bytes:
    """A one-entry statement whose :61: reads ``entry`` (amount 500000 đồng)."""
    mark = "D" if entry[10:11] == "D" else "C"
    closing = f"{mark}240515VND{amount}"
    return (
        ":20:S\n:25:0011001234567\n:28C:1/1\n:60F:C240515VND0,\n"
        f":61:{entry}\n{details}:62F:{closing}\n-\n"
    ).encode()


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
        (
            GOOD.replace("C500000,NTRF", "C500000NTRF"),
            "line 5 (:61:) amount",
            "expected digits with a decimal comma, found '500000NTRF",
        ),
        (GOOD.replace("C500000,NTRF", "C500000,50NTRF"), "line 5 (:61:) amount", "fraction"),
        (
            GOOD.replace("C500000,NTRF", "X500000,NTRF"),
            "line 5 (:61:) debit/credit mark",
            "expected C, D, RC or RD",
        ),
        (GOOD.replace("C500000,NTRF", "CR500000,NTRF"), "line 5 (:61:) funds code", "'D'"),
        (
            GOOD.replace("C500000,NTRF", "C500000,XTRF"),
            "line 5 (:61:) transaction type",
            "expected N, S or F",
        ),
        (GOOD.replace("2405150515C5", "24051Q0515C5"), "line 5 (:61:) value date", "YYMMDD"),
        (GOOD.replace("2405150515C5", "2413450515C5"), "line 5 (:61:) value date", "not a date"),
        (GOOD.replace("2405150515C5", "2405151315C5"), "line 5 (:61:) entry date", "MMDD"),
        (GOOD.replace("240515VND1000000", "240515USD1000000"), "line 4 (:60F:)", "VND"),
        (GOOD.replace("1300000,", "1300001,"), "line 11 (:62F:)", "missing or extra"),
        (GOOD.replace(":28C:", ":99:"), "line 3", "unknown tag :99:"),
        (GOOD.replace(":25:0011001234567\r\n", ""), "line 2 (:28C:)", "expected the account"),
        ("junk\r\n" + GOOD, "line 1", "text before a statement"),
        (GOOD.replace(":62F:C240515VND1300000,\r\n", ""), "end of file", "closing"),
        (
            GOOD.replace("0123456789\r\n:86:HOAN", "0123456789\r\nA\r\nB\r\n:86:HOAN"),
            "line 11",
            ":61: (line 8) takes at most 2 more lines",
        ),
    ],
)
def test_errors_name_the_line_and_sub_field(broken: str, where: str, reason: str) -> None:
    assert_refused(parse_mt940, broken.encode(), where, reason)


def test_non_utf8_names_the_line() -> None:
    with pytest.raises(StatementParseError) as caught:
        parse_mt940(GOOD.encode().replace(b"HOAN", b"HO\xffN"))
    assert caught.value.where == "line 10"


def test_limits() -> None:
    with pytest.raises(StatementParseError, match="more than the limit"):
        parse_mt940(GOOD.encode(), limits=StatementLimits(bytes_max=50))
    with pytest.raises(StatementParseError, match="more than 1 entries"):
        parse_mt940(GOOD.encode(), limits=StatementLimits(entries_max=1))
    long_details = ":86:" + "\n".join(["X" * 65] * 101) + "\n"
    with pytest.raises(StatementParseError, match="takes at most 99 more lines"):
        parse_mt940(_one_entry("2405150515C500000,NTRFNONREF//R1", long_details))


def test_consecutive_statements_must_chain() -> None:
    second = GOOD.replace("1000000,", "1300000,", 1).replace("1300000,\r\n-", "1600000,\r\n-")
    second = second.replace("QR2405150000000", "QR2405150000009")
    parsed = parse_mt940((GOOD + second).encode())
    assert len(parsed.lines) == 4
    assert parsed.closing_balance_vnd == 1_600_000
    gap = second.replace(":60F:C240515VND1300000,", ":60F:C240515VND1200000,")
    with pytest.raises(StatementParseError, match="a statement is missing"):
        parse_mt940((GOOD + gap.replace("1600000,", "1500000,")).encode())
    other = second.replace(":25:0011001234567", ":25:0011009999999")
    with pytest.raises(StatementParseError, match="one file must hold one account"):
        parse_mt940((GOOD + other).encode())


ENVELOPED = (
    "\x01{1:F01BANKVNVXAXXX0000000000}{2:O940BANKVNVXXXXXN}{3:{108:MSG1}}{4:\r\n"
    + GOOD.removesuffix("-\r\n")
    + "-}{5:{CHK:123456789ABC}}\x03\x01{1:F01BANKVNVXAXXX0000000000}{2:O940BANKVNVXXXXXN}{4:\r\n"
    + GOOD.replace("1000000,", "1300000,", 1)
    .replace("1300000,\r\n-", "1600000,\r\n-")
    .replace("QR2405150000000", "QR2405150000009")
    .removesuffix("-\r\n")
    + "-}\x03\r\n\x1a"
)


@pytest.mark.parametrize(
    "data",
    [
        ENVELOPED,
        ":940:\r\n" + GOOD,
        "ABNANL2A\r\n940\r\nABNANL2A\r\n" + GOOD,
        "0000 01INGBNL2AXXXX00001\r\n0000 01INGBNL2AXXXX00001\r\n940 00\r\n" + GOOD,
        "{1:F01INGBNL2AXXXX00001}\r\n{2:I940INGBNL2AXXXN}\r\n{4:\r\n" + GOOD + "-}\r\n",
    ],
    ids=["swift-envelope-soh-etx-ctrl-z", "rabobank", "abn-amro", "ing", "envelope-on-lines"],
)
def test_envelopes_and_bank_headers_are_read(data: str) -> None:
    parsed = parse_mt940(data.encode())
    assert [line.bank_ref for line in parsed.lines][:2] == ["QR24051500000001", "QR24051500000002"]
    assert parsed.closing_balance_vnd in (1_300_000, 1_600_000)


def test_other_swift_message_types_are_refused() -> None:
    data = "{1:F01BANKVNVXAXXX0000000000}{2:O942BANKVNVXXXXXN}{4:\r\n" + GOOD
    with pytest.raises(StatementParseError) as caught:
        parse_mt940(data.encode())
    assert caught.value.where == "line 1 (SWIFT block 2)"
    assert "MT940" in caught.value.reason
    interim = GOOD.replace(":60F:C240515VND1000000,", ":34F:VND0,")
    with pytest.raises(StatementParseError, match="MT942 interim report"):
        parse_mt940(interim.encode())


def test_entries_without_bank_reference_get_a_stable_derived_one() -> None:
    entry = "2405150515C250000,NTRFNONREF"
    data = _one_entry(entry, ":86:A\n:61:" + entry + "\n:86:A\n")
    first, second = parse_mt940(data).lines
    assert first.bank_ref.startswith("MT940-")
    assert second.bank_ref == first.bank_ref + "-2"
    # The same booking read again gets the same reference; another does not.
    assert parse_mt940(data).lines[0].bank_ref == first.bank_ref
    other = _one_entry(entry, ":86:B\n:61:" + entry + "\n:86:A\n")
    assert parse_mt940(other).lines[0].bank_ref != first.bank_ref
    # NONREF after // is no reference either.
    [line] = parse_mt940(_one_entry("2405150515C500000,NTRFNONREF//NONREF")).lines
    assert line.bank_ref.startswith("MT940-")


@pytest.mark.parametrize(
    ("entry", "bank_ref"),
    [
        ("2405150515C500000,NTRF//R1", "R1"),  # empty customer reference
        ("2405150515C500000,NTRF0121470966      W.P. Jansen//R1", "R1"),  # longer than 16
        ("240515C500000,NTRFNONREF//R1", "R1"),  # no entry date
        ("240515    C500000,NTRFNONREF//R1", "R1"),  # entry date left blank (Citi)
        ("2405150515CD500000,NTRFNONREF//R1", "R1"),  # funds code
        ("2405150515C500000,NOV NONREF//R1", "R1"),  # a space in the type (ING)
        ("2405150515C500000,NCOMNONREF          //CIOB220117990193/IACC/D3/", "CIOB220117990193"),
    ],
)
def test_optional_and_stretched_sub_fields_are_read(entry: str, bank_ref: str) -> None:
    [line] = parse_mt940(_one_entry(entry)).lines
    assert (line.bank_ref, line.amount_vnd, line.direction) == (bank_ref, 500_000, Direction.CREDIT)


def test_long_repeated_and_tabbed_details_make_the_content() -> None:
    details = (
        ":86:" + "A" * 65 + "\n" + "B" * 10 + "\n" + "C\tD\n" + "\n".join("L" for _ in range(8))
    )
    details += "\n:86:SECOND FIELD\n"
    [line] = parse_mt940(_one_entry("2405150515C500000,NTRF//R1", details)).lines
    assert line.content == "A" * 65 + "B" * 10 + " C D " + " ".join("L" * 8) + " SECOND FIELD"


@given(words=st.lists(st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True), min_size=1, max_size=20))
def test_text_cut_at_65_characters_is_joined_back(words: list[str]) -> None:
    text = " ".join(words)
    chunks = [text[i : i + 65] for i in range(0, len(text), 65)]
    wraps = [len(chunk) == 65 and not chunk.endswith(" ") for chunk in chunks]
    assert join_wrapped([chunk.rstrip(" ") for chunk in chunks], wraps) == text


def test_a_short_line_ends_a_word() -> None:
    # "LANG" ended a line that was not full: a new word follows.
    data = _one_entry("2405150515C500000,NTRF//R1", ":86:BETAALAUTOMAAT LANG\nISREK: 1\n")
    assert parse_mt940(data).lines[0].content == "BETAALAUTOMAAT LANG ISREK: 1"


@pytest.mark.parametrize(
    ("supplementary", "counterparty", "content"),
    [
        ("0123456789", "0123456789", "X"),
        ("NL70ABNA0987654321", "NL70ABNA0987654321", "X"),
        ("P001234567", "P001234567", "X"),
        ("/TRCD/01018/", "", "X"),
        ("j blom", "", "X"),
        ("20131209007602198765432000000012", "", "X"),
    ],
)
def test_supplementary_details_are_a_counterparty_only_when_an_account(
    supplementary: str, counterparty: str, content: str
) -> None:
    data = _one_entry("2405150515C500000,NTRF//R1", f"{supplementary}\n:86:X\n")
    [line] = parse_mt940(data).lines
    assert (line.counterparty, line.content) == (counterparty, content)


def test_without_details_the_supplementary_text_is_the_content() -> None:
    data = _one_entry("2405150515C500000,NTRF//R1", "/ABC/DEF/MISCELLANEOUS\nSECOND LINE\n")
    [line] = parse_mt940(data).lines
    assert (line.counterparty, line.content) == ("", "/ABC/DEF/MISCELLANEOUS SECOND LINE")


def test_zero_amount_entries_are_skipped_and_wrapped_statement_number_read() -> None:
    data = _one_entry(
        "2405150515C0,NDEFNONREF//\n/ABC/DEF/C 37897,00 BAI CD 025\n:61:2405150515C500000,NTRF//R1",
        ":86:X\n",
    ).replace(b":28C:1/1\n", b":28C:00001/\n001\n")
    [line] = parse_mt940(data).lines
    assert (line.bank_ref, line.amount_vnd) == ("R1", 500_000)


@ROUND_TRIP
@given(lines=sim_lines(contents=bank_contents, counterparties=account_numbers), opening=openings)
def test_round_trip(lines: list[SimLine], opening: int) -> None:
    parsed = parse_mt940(render_mt940("0011001234567", STATEMENT_DATE, opening, lines))
    assert parsed.opening_balance_vnd == opening
    assert parsed.closing_balance_vnd == closing_balance(opening, lines)
    # MT940 carries the booking date only.
    day_start = vietnam_day_start_utc(STATEMENT_DATE)
    assert read_rows(parsed.lines) == sim_rows(lines, booked_at=day_start)


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
@given(text=st.text(alphabet=":0123456789CDRNTFVD,/\r\n -ABXYZ{}\x01\x03", max_size=600))
def test_tag_shaped_text_only_raises_the_parse_error(text: str) -> None:
    only_clean_refusals(parse_mt940, text.encode())
