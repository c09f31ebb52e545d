"""SWIFT MT940 (customer statement) parser: tolerant of what real banks
send, strict about money.

Why not the ``mt-940`` package: it is built to be lenient about everything.
It folds lines it does not recognise into the previous field, prints debug
output on a field it cannot match, reports errors as bare ``RuntimeError``
without a line number, and reads amounts as ``Decimal``. An import that must
refuse a bad file as a whole, naming the line, needs the opposite, so this
module reads the fields itself; the tests check that ``mt-940`` reads the
simulator's files to the same amounts.

Read (``mt940_fields`` takes off the envelope and bank headers first), per
statement: ``:20:`` [``:21:``] [``:13D:``] ``:25:`` ``:28C:`` ``:60F:|:60M:``
then any number of ``:61:`` [``:86:``]* then ``:62F:|:62M:`` [``:64:``]
[``:65:``]* [``:86:``]*. Several statements may follow each other for one
account, each opening with the balance the previous one closed with.

``:61:`` is ``YYMMDD[MMDD]`` mark amount type customer-ref [``//``bank-ref]
[supplementary]: the entry date, the funds code, the bank reference and the
supplementary details are optional; the customer reference may be empty or
longer than SWIFT's 16 characters (banks put account numbers and names
there). Each refusal names the sub-field that is wrong.

- ``bank_ref`` is the bank reference after ``//`` (not ``NONREF``); without
  one, a reference derived from the entry itself (see ``derived_bank_ref``).
- ``content`` is the entry's ``:86:`` fields, wrapped lines joined back
  (``mt940_fields.join_wrapped``), several ``:86:`` joined by a space, TAB as
  a space; without ``:86:``, the supplementary details.
- ``counterparty`` is the supplementary details only when they are an
  account number (an IBAN, or up to three letters and 5-19 digits); banks
  put names, codes and references there too, which are not counterparties.
- A ``:61:`` of amount 0 (a bank's balance memo, e.g. Citi's ``BAI`` lines)
  moves no money: it is skipped, not a line, and the file is read.
- The booking date is the entry date when present, else the value date;
  MT940 carries no time, so ``booked_at`` is the start of that day in Vietnam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from bank_adapters.statements.common import (
    CONTENT_LENGTH_MAX,
    DEFAULT_LIMITS,
    FIELD_LENGTH_MAX,
    StatementLimits,
    check_amount,
    check_balances,
    check_bank_ref,
    check_text,
    check_unique_refs,
    clip_raw,
    decoded_text,
    derived_bank_ref,
    parse_whole_vnd,
    vietnam_day_start_utc,
)
from bank_adapters.statements.mt940_fields import Field, join_wrapped, tokenize
from bank_adapters.types import (
    Direction,
    ParsedStatement,
    StatementFormat,
    StatementLine,
    StatementParseError,
)

_FMT: Final = StatementFormat.MT940
_BALANCE_RE: Final = re.compile(r"([CD])(\d{6})([A-Z]{3})(\d{1,15},\d{0,14})", re.ASCII)
_ENTRY_HEAD_RE: Final = re.compile(r"(\d{6})(\d{4}|    )?", re.ASCII)
_MARK_RE: Final = re.compile(r"R?[CD]", re.ASCII)
_AMOUNT_RE: Final = re.compile(r"\d{1,15},\d{0,14}", re.ASCII)
_TYPE_RE: Final = re.compile(r"[NSF][A-Za-z0-9 ]{3}", re.ASCII)
_COUNTERPARTY_RE: Final = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}|[A-Z]{0,3}\d{5,19}", re.ASCII)
_BANK_REF_LENGTH: Final = 16
_NO_REFERENCE: Final = "NONREF"
_MARK_DIRECTION: Final = {
    "C": Direction.CREDIT,
    "D": Direction.DEBIT,
    "RC": Direction.DEBIT,  # reversal of a credit takes money out
    "RD": Direction.CREDIT,
}


@dataclass(frozen=True, slots=True)
class _Entry:
    """The sub-fields of one ``:61:``."""

    value_date: date
    booked: date
    mark: str
    amount_vnd: int
    type_code: str
    customer_ref: str
    bank_ref: str
    supplementary: str


@dataclass(slots=True)
class _Block:
    account: str
    opening_vnd: int
    closing_vnd: int
    lines: list[StatementLine]


def parse_mt940(data: bytes, *, limits: StatementLimits = DEFAULT_LIMITS) -> ParsedStatement:
    """Parse one MT940 file; raises ``StatementParseError`` (nothing else)."""
    text = decoded_text(_FMT, data, limits)
    fields = tokenize(text)
    blocks: list[_Block] = []
    entries = 0
    position = 0
    seen: dict[str, int] = {}
    while position < len(fields):
        block, position = _block(fields, position, seen)
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


def _expect(fields: list[Field], position: int, tags: tuple[str, ...], what: str) -> Field:
    if position >= len(fields):
        raise StatementParseError(_FMT, "end of file", f"expected {what}")
    found = fields[position]
    if found.tag not in tags:
        raise StatementParseError(_FMT, found.where, f"expected {what}, found :{found.tag}:")
    return found


def _date(text: str, where: str) -> date:
    try:
        return date(2000 + int(text[0:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise StatementParseError(_FMT, where, f"{text!r} is not a date YYMMDD") from None


def _balance(balance: Field) -> int:
    match = _BALANCE_RE.fullmatch(balance.lines[0])
    if match is None:
        raise StatementParseError(
            _FMT, balance.where, "balance must be C|D, YYMMDD, currency, amount with a comma"
        )
    mark, day, currency, amount = match.groups()
    _date(day, balance.where)
    if currency != "VND":
        raise StatementParseError(_FMT, balance.where, f"currency must be VND, got {currency}")
    value = parse_whole_vnd(_FMT, balance.where, amount)
    return value if mark == "C" else -value


def _block(fields: list[Field], position: int, seen: dict[str, int]) -> tuple[_Block, int]:
    _expect(fields, position, ("20",), "a statement reference :20:")
    position += 1
    while position < len(fields) and fields[position].tag in ("21", "13D"):
        position += 1
    account_field = _expect(fields, position, ("25",), "the account :25:")
    account = "".join(account_field.lines).strip()
    if not account:
        raise StatementParseError(_FMT, account_field.where, "account missing")
    _expect(fields, position + 1, ("28C", "28"), "the statement number :28C:")
    opening = _balance(_expect(fields, position + 2, ("60F", "60M"), "the opening balance :60F:"))
    position += 3
    lines: list[StatementLine] = []
    while position < len(fields) and fields[position].tag == "61":
        entry_field = fields[position]
        position += 1
        details: list[Field] = []
        while position < len(fields) and fields[position].tag == "86":
            details.append(fields[position])
            position += 1
        line = _statement_line(account, entry_field, details, seen)
        if line is not None:
            lines.append(line)
    closing_field = _expect(fields, position, ("62F", "62M"), "a :61: entry or the closing :62F:")
    closing = _balance(closing_field)
    check_balances(_FMT, closing_field.where, opening, closing, lines)
    position += 1
    while position < len(fields) and fields[position].tag in ("64", "65", "86"):
        position += 1
    if position < len(fields) and fields[position].tag != "20":
        unexpected = fields[position]
        raise StatementParseError(
            _FMT, unexpected.where, f"unexpected :{unexpected.tag}: after :62F:"
        )
    return _Block(account, opening, closing, lines), position


def _check_continuity(previous: _Block, block: _Block, last_field: Field) -> None:
    if block.account != previous.account:
        raise StatementParseError(
            _FMT,
            last_field.where,
            f"account {block.account!r} differs from {previous.account!r}: "
            "one file must hold one account",
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
        raise StatementParseError(
            _FMT, f"{where} entry date", f"{entry!r} is not a date MMDD"
        ) from None


def _sub(pattern: re.Pattern[str], text: str, pos: int, where: str, expected: str) -> str:
    match = pattern.match(text, pos)
    if match is None:
        raise StatementParseError(
            _FMT, where, f"expected {expected}, found {text[pos : pos + 20]!r}"
        )
    return match.group(0)


def _entry(entry_field: Field) -> _Entry:
    """The sub-fields of ``:61:``, each refusal naming the one that is wrong."""
    text, where = entry_field.lines[0], entry_field.where
    head = _ENTRY_HEAD_RE.match(text)
    if head is None:
        raise StatementParseError(
            _FMT, f"{where} value date", f"expected YYMMDD, found {text[:6]!r}"
        )
    value_date = _date(head.group(1), f"{where} value date")
    entry_date = head.group(2) if head.group(2) and head.group(2).strip() else None
    pos = head.end()
    mark = _sub(_MARK_RE, text, pos, f"{where} debit/credit mark", "C, D, RC or RD")
    pos += len(mark)
    if text[pos : pos + 1].isalpha():
        if text[pos] != "D":
            raise StatementParseError(
                _FMT,
                f"{where} funds code",
                f"expected 'D' (the last letter of VND) or nothing, found {text[pos]!r}",
            )
        pos += 1
    amount = _sub(_AMOUNT_RE, text, pos, f"{where} amount", "digits with a decimal comma")
    pos += len(amount)
    type_code = _sub(
        _TYPE_RE, text, pos, f"{where} transaction type", "N, S or F and 3 letters or digits"
    )
    pos += len(type_code)
    references, _, bank_part = text[pos:].partition("//")
    bank_ref = bank_part[:_BANK_REF_LENGTH].strip()
    supplementary = [bank_part[_BANK_REF_LENGTH:].strip(), *entry_field.lines[1:]]
    return _Entry(
        value_date=value_date,
        booked=_booking_date(value_date, entry_date, where),
        mark=mark,
        amount_vnd=parse_whole_vnd(_FMT, f"{where} amount", amount),
        type_code=type_code,
        customer_ref=references.strip(),
        bank_ref="" if bank_ref.upper() == _NO_REFERENCE else bank_ref,
        supplementary=" ".join(part.strip() for part in supplementary if part.strip()),
    )


def _statement_line(
    account: str, entry_field: Field, details: list[Field], seen: dict[str, int]
) -> StatementLine | None:
    entry = _entry(entry_field)
    where = entry_field.where
    if entry.amount_vnd == 0:
        return None
    check_amount(_FMT, f"{where} amount", entry.amount_vnd)
    content = " ".join(
        joined for joined in (join_wrapped(d.lines, d.wraps) for d in details) if joined
    ).replace("\t", " ")
    counterparty = entry.supplementary if _COUNTERPARTY_RE.fullmatch(entry.supplementary) else ""
    if not details and not counterparty:
        content = entry.supplementary
    raw = "\n".join([entry_field.raw, *(d.raw for d in details)])
    if entry.bank_ref:
        bank_ref = check_bank_ref(_FMT, f"{where} bank reference", entry.bank_ref)
    else:
        bank_ref = _derived(account, entry, content, seen)
    return StatementLine(
        bank_ref=bank_ref,
        booked_at=vietnam_day_start_utc(entry.booked),
        amount_vnd=entry.amount_vnd,
        direction=_MARK_DIRECTION[entry.mark],
        counterparty=check_text(
            _FMT, f"{where} supplementary details", "counterparty", counterparty, FIELD_LENGTH_MAX
        ),
        content=check_text(_FMT, f"{where} :86:", "content", content, CONTENT_LENGTH_MAX),
        raw=clip_raw(raw),
        end_to_end_ref=None,
        source_line=entry_field.line_number,
    )


def _derived(account: str, entry: _Entry, content: str, seen: dict[str, int]) -> str:
    parts = (
        account,
        entry.value_date.isoformat(),
        entry.booked.isoformat(),
        entry.mark,
        str(entry.amount_vnd),
        entry.type_code,
        entry.customer_ref,
        entry.supplementary,
        content,
    )
    return derived_bank_ref("MT940", parts, seen)
