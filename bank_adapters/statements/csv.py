"""CSV statement parser (the VietQR bank's export).

UTF-8 (a BOM is allowed), comma-separated, RFC 4180 quoting, one header row
naming exactly these columns, in any order::

    bank_ref,booked_at,direction,amount_vnd,counterparty,content

``booked_at`` is ISO 8601 (an offset is expected; without one, Vietnam time),
``direction`` is ``C`` (money in) or ``D`` (money out), ``amount_vnd`` whole
đồng. Any bad row refuses the whole file, naming the line and column.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Final

from bank_adapters.statements.common import (
    DEFAULT_LIMITS,
    FIELD_LENGTH_MAX,
    StatementLimits,
    check_amount,
    check_bank_ref,
    check_text,
    check_unique_refs,
    clip_raw,
    decoded_text,
    to_utc,
)
from bank_adapters.types import (
    Direction,
    ParsedStatement,
    StatementFormat,
    StatementLine,
    StatementParseError,
)

_FMT: Final = StatementFormat.CSV
COLUMNS: Final = ("bank_ref", "booked_at", "direction", "amount_vnd", "counterparty", "content")
_AMOUNT_RE: Final = re.compile(r"\d{1,16}", re.ASCII)
_DIRECTIONS: Final = {"C": Direction.CREDIT, "D": Direction.DEBIT}


def parse_csv_statement(
    data: bytes, *, limits: StatementLimits = DEFAULT_LIMITS
) -> ParsedStatement:
    """Parse one CSV statement; raises ``StatementParseError`` (nothing else).
    CSV carries no account and no balances."""
    text = decoded_text(_FMT, data, limits)
    # newline="" keeps quoted line breaks inside fields, as the csv module wants.
    physical = list(io.StringIO(text, newline=""))
    reader = csv.reader(physical, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise StatementParseError(_FMT, "line 1", "header row missing")
        columns = _columns(header)
        lines: list[StatementLine] = []
        consumed = reader.line_num
        for row in reader:
            if not any(cell.strip() for cell in row):
                consumed = reader.line_num
                continue
            if len(lines) >= limits.entries_max:
                raise StatementParseError(_FMT, "file", f"more than {limits.entries_max} rows")
            raw = "".join(physical[consumed : reader.line_num]).rstrip("\r\n")
            first_line = consumed + 1
            lines.append(_row(row, columns, first_line, raw))
            consumed = reader.line_num
    except csv.Error as exc:
        raise StatementParseError(_FMT, f"line {reader.line_num}", f"bad CSV: {exc}") from None
    check_unique_refs(_FMT, lines)
    return ParsedStatement(format=_FMT, account="", lines=tuple(lines))


def _columns(header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    missing = [c for c in COLUMNS if c not in names]
    unknown = [n for n in names if n not in COLUMNS]
    if missing or unknown or len(set(names)) != len(names):
        raise StatementParseError(
            _FMT,
            "line 1 (header)",
            f"columns must be exactly {', '.join(COLUMNS)}; missing {missing}, "
            f"unknown {[u[:40] for u in unknown]}",
        )
    return {name: index for index, name in enumerate(names)}


def _row(row: list[str], columns: dict[str, int], line: int, raw: str) -> StatementLine:
    if len(row) != len(columns):
        raise StatementParseError(
            _FMT, f"line {line}", f"expected {len(columns)} fields, found {len(row)}"
        )

    def cell(name: str) -> str:
        return row[columns[name]].strip()

    def where(name: str) -> str:
        return f"line {line}, column {name}"

    amount_text = cell("amount_vnd")
    if not _AMOUNT_RE.fullmatch(amount_text):
        raise StatementParseError(
            _FMT, where("amount_vnd"), f"{amount_text[:40]!r} is not a whole number of đồng"
        )
    amount_vnd = int(amount_text)
    check_amount(_FMT, where("amount_vnd"), amount_vnd)
    direction = _DIRECTIONS.get(cell("direction").upper())
    if direction is None:
        raise StatementParseError(
            _FMT, where("direction"), f"must be C or D, got {cell('direction')[:20]!r}"
        )
    try:
        booked_at = to_utc(datetime.fromisoformat(cell("booked_at")))
    except (ValueError, OverflowError) as exc:
        raise StatementParseError(
            _FMT, where("booked_at"), f"not an ISO 8601 time: {exc}"
        ) from None
    return StatementLine(
        bank_ref=check_bank_ref(_FMT, where("bank_ref"), cell("bank_ref")),
        booked_at=booked_at,
        amount_vnd=amount_vnd,
        direction=direction,
        counterparty=check_text(
            _FMT, where("counterparty"), "counterparty", cell("counterparty"), FIELD_LENGTH_MAX
        ),
        content=check_text(_FMT, where("content"), "content", cell("content"), FIELD_LENGTH_MAX),
        raw=clip_raw(raw),
        source_line=line,
    )
