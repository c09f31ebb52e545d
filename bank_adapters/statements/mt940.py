"""SWIFT MT940 (customer statement) parser, strict.

Why not the ``mt-940`` package: it is built to be lenient. It folds lines it
does not recognise into the previous field, prints debug output on a field
it cannot match, reports errors as bare ``RuntimeError`` without a line
number, and reads amounts as ``Decimal`` with currency-less rounding rules.
An import that must refuse a bad file as a whole, naming the line, needs the
opposite, so this module reads the fields itself; the tests check that
``mt-940`` reads the simulator's files to the same amounts, so both agree on
the format.

Accepted per statement block: ``:20:`` [``:21:``] [``:13D:``] ``:25:``
``:28C:`` ``:60F:|:60M:`` then any number of ``:61:`` [``:86:``] then
``:62F:|:62M:`` [``:64:``] [``:65:``]* [``:86:``]. The second line of
``:61:`` (supplementary details) is the counterparty account; ``:86:`` lines
are the transfer content, wrapped at 65 characters and joined back without
separator. Several blocks may follow each other (one account; each block
opens with the balance the previous one closed with). The booking date is
the entry date (``MMDD``) when present, else the value date; MT940 carries
no time, so ``booked_at`` is the start of that day in Vietnam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from bank_adapters.statements.common import (
    DEFAULT_LIMITS,
    FIELD_LENGTH_MAX,
    StatementLimits,
    check_amount,
    check_balances,
    check_bank_ref,
    check_size,
    check_text,
    check_unique_refs,
    clip_raw,
    parse_whole_vnd,
    vietnam_day_start_utc,
)
from bank_adapters.types import (
    Direction,
    ParsedStatement,
    StatementFormat,
    StatementLine,
    StatementParseError,
)

_FMT: Final = StatementFormat.MT940
_TAG_RE: Final = re.compile(r":(\d{2}[A-Z]?):(.*)", re.ASCII)
# Continuation lines each tag may have (SWIFT: :61: has one line of
# supplementary details, :86: up to 6 x 65).
_CONTINUATIONS_MAX: Final = {
    "20": 0,
    "21": 0,
    "13D": 0,
    "25": 0,
    "28": 0,
    "28C": 0,
    "60F": 0,
    "60M": 0,
    "61": 1,
    "86": 5,
    "62F": 0,
    "62M": 0,
    "64": 0,
    "65": 0,
}
_BALANCE_RE: Final = re.compile(r"([CD])(\d{6})([A-Z]{3})(\d{1,15},\d{0,14})", re.ASCII)
_STATEMENT_LINE_RE: Final = re.compile(
    r"(?P<value>\d{6})(?P<entry>\d{4})?(?P<mark>R?[CD])(?P<funds>[A-Z])?"
    r"(?P<amount>\d{1,15},\d{0,14})(?P<type>[NSF][A-Z0-9]{3})"
    r"(?P<customer>(?:(?!//).){1,16})(?://(?P<bank>.{1,16}))?",
    re.ASCII,
)
_LINE_SPLIT_RE: Final = re.compile(r"\r\n|\r|\n")
_MARK_DIRECTION: Final = {
    "C": Direction.CREDIT,
    "D": Direction.DEBIT,
    "RC": Direction.DEBIT,  # reversal of a credit takes money out
    "RD": Direction.CREDIT,
}


@dataclass(slots=True)
class _Field:
    tag: str
    lines: list[str]
    line_number: int

    @property
    def where(self) -> str:
        return f"line {self.line_number} (:{self.tag}:)"

    @property
    def raw(self) -> str:
        return "\n".join([f":{self.tag}:{self.lines[0]}", *self.lines[1:]])


@dataclass(slots=True)
class _Block:
    account: str
    opening_vnd: int
    closing_vnd: int
    closing_where: str
    lines: list[StatementLine]


def parse_mt940(data: bytes, *, limits: StatementLimits = DEFAULT_LIMITS) -> ParsedStatement:
    """Parse one MT940 file; raises ``StatementParseError`` (nothing else)."""
    check_size(_FMT, data, limits)
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StatementParseError(_FMT, f"line {line}", "not UTF-8 text") from None
    fields = _tokenize(text)
    blocks: list[_Block] = []
    entries = 0
    position = 0
    while position < len(fields):
        block, position = _block(fields, position)
        entries += len(block.lines)
        if entries > limits.entries_max:
            raise StatementParseError(_FMT, "file", f"more than {limits.entries_max} entries")
        if blocks:
            _check_continuity(blocks[-1], block, fields[position - 1])
        blocks.append(block)
    if not blocks:
        raise StatementParseError(_FMT, "file", "no statement (:20:) found")
    lines = [line for block in blocks for line in block.lines]
    check_unique_refs(_FMT, lines)
    return ParsedStatement(
        format=_FMT,
        account=blocks[0].account,
        lines=tuple(lines),
        opening_balance_vnd=blocks[0].opening_vnd,
        closing_balance_vnd=blocks[-1].closing_vnd,
    )


def _tokenize(text: str) -> list[_Field]:
    fields: list[_Field] = []
    for number, physical in enumerate(_LINE_SPLIT_RE.split(text), start=1):
        line = physical.rstrip(" ")
        if not line or line in ("-", "-}"):
            continue
        match = _TAG_RE.fullmatch(line)
        if match is not None:
            tag = match.group(1)
            if tag not in _CONTINUATIONS_MAX:
                raise StatementParseError(_FMT, f"line {number}", f"unknown tag :{tag}:")
            fields.append(_Field(tag, [match.group(2)], number))
            continue
        if not fields:
            raise StatementParseError(_FMT, f"line {number}", "text before the first tag")
        previous = fields[-1]
        if len(previous.lines) > _CONTINUATIONS_MAX[previous.tag]:
            raise StatementParseError(
                _FMT,
                f"line {number}",
                f"too many continuation lines for :{previous.tag}: (from line "
                f"{previous.line_number}), or a line that is not a tag",
            )
        previous.lines.append(line)
    for field in fields:
        check_text(_FMT, field.where, "field", "".join(field.lines), FIELD_LENGTH_MAX)
    return fields


def _expect(fields: list[_Field], position: int, tags: tuple[str, ...], what: str) -> _Field:
    if position >= len(fields):
        raise StatementParseError(_FMT, "end of file", f"expected {what}")
    field = fields[position]
    if field.tag not in tags:
        raise StatementParseError(_FMT, field.where, f"expected {what}, found :{field.tag}:")
    return field


def _date(text: str, where: str) -> date:
    try:
        return date(2000 + int(text[0:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise StatementParseError(_FMT, where, f"{text!r} is not a date YYMMDD") from None


def _balance(field: _Field) -> int:
    match = _BALANCE_RE.fullmatch(field.lines[0])
    if match is None:
        raise StatementParseError(
            _FMT, field.where, "balance must be C|D, YYMMDD, currency, amount with a comma"
        )
    mark, day, currency, amount = match.groups()
    _date(day, field.where)
    if currency != "VND":
        raise StatementParseError(_FMT, field.where, f"currency must be VND, got {currency}")
    value = parse_whole_vnd(_FMT, field.where, amount)
    return value if mark == "C" else -value


def _block(fields: list[_Field], position: int) -> tuple[_Block, int]:
    _expect(fields, position, ("20",), "a statement reference :20:")
    position += 1
    while position < len(fields) and fields[position].tag in ("21", "13D"):
        position += 1
    account_field = _expect(fields, position, ("25",), "the account :25:")
    account = account_field.lines[0].strip()
    if not account:
        raise StatementParseError(_FMT, account_field.where, "account missing")
    _expect(fields, position + 1, ("28C", "28"), "the statement number :28C:")
    opening = _balance(_expect(fields, position + 2, ("60F", "60M"), "the opening balance :60F:"))
    position += 3
    lines: list[StatementLine] = []
    while position < len(fields) and fields[position].tag == "61":
        details: _Field | None = None
        if position + 1 < len(fields) and fields[position + 1].tag == "86":
            details = fields[position + 1]
        lines.append(_statement_line(fields[position], details))
        position += 2 if details is not None else 1
    closing_field = _expect(fields, position, ("62F", "62M"), "a :61: entry or the closing :62F:")
    closing = _balance(closing_field)
    check_balances(_FMT, closing_field.where, opening, closing, lines)
    position += 1
    while position < len(fields) and fields[position].tag in ("64", "65", "86"):
        position += 1
    if position < len(fields) and fields[position].tag != "20":
        field = fields[position]
        raise StatementParseError(_FMT, field.where, f"unexpected :{field.tag}: after :62F:")
    return _Block(account, opening, closing, closing_field.where, lines), position


def _check_continuity(previous: _Block, block: _Block, last_field: _Field) -> None:
    if block.account != previous.account:
        raise StatementParseError(
            _FMT, last_field.where, f"account {block.account!r} differs from {previous.account!r}"
        )
    if block.opening_vnd != previous.closing_vnd:
        raise StatementParseError(
            _FMT,
            last_field.where,
            f"statement opens with {block.opening_vnd}, previous closed with "
            f"{previous.closing_vnd}: a statement is missing",
        )


def _booking_date(value_date: date, entry: str | None, where: str) -> date:
    if entry is None:
        return value_date
    month, day = int(entry[:2]), int(entry[2:])
    year = value_date.year
    # The entry date has no year: it is next to the value date, maybe across New Year.
    if value_date.month == 12 and month == 1:
        year += 1
    elif value_date.month == 1 and month == 12:
        year -= 1
    try:
        return date(year, month, day)
    except ValueError:
        raise StatementParseError(_FMT, where, f"entry date {entry!r} is not MMDD") from None


def _statement_line(field: _Field, details: _Field | None) -> StatementLine:
    match = _STATEMENT_LINE_RE.fullmatch(field.lines[0])
    if match is None:
        raise StatementParseError(
            _FMT,
            field.where,
            "must be YYMMDD[MMDD]C|D|RC|RD amount,NTTT customer-ref[//bank-ref]",
        )
    funds = match.group("funds")
    if funds is not None and funds != "D":
        raise StatementParseError(_FMT, field.where, f"funds code {funds!r} is not VND's 'D'")
    amount_vnd = parse_whole_vnd(_FMT, field.where, match.group("amount"))
    check_amount(_FMT, field.where, amount_vnd)
    booked = _booking_date(
        _date(match.group("value"), field.where), match.group("entry"), field.where
    )
    bank_ref = check_bank_ref(_FMT, f"{field.where} bank reference", match.group("bank") or "")
    counterparty = field.lines[1].strip() if len(field.lines) > 1 else ""
    content = "".join(details.lines).strip() if details is not None else ""
    raw = field.raw if details is None else f"{field.raw}\n{details.raw}"
    return StatementLine(
        bank_ref=bank_ref,
        booked_at=vietnam_day_start_utc(booked),
        amount_vnd=amount_vnd,
        direction=_MARK_DIRECTION[match.group("mark")],
        counterparty=counterparty,
        content=content,
        raw=clip_raw(raw),
        end_to_end_ref=None,
        source_line=field.line_number,
    )
