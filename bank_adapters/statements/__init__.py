"""Statement parsers: camt.053 XML, MT940 and CSV, all to ``StatementLine``.

Each parser takes the file's bytes and returns a ``ParsedStatement`` or
raises ``StatementParseError`` naming the line or element and the reason;
no other exception escapes, and a bad file yields nothing at all.
"""

from __future__ import annotations

from bank_adapters.statements.camt053 import parse_camt053
from bank_adapters.statements.common import DEFAULT_LIMITS, StatementLimits
from bank_adapters.statements.csv import parse_csv_statement
from bank_adapters.statements.mt940 import parse_mt940
from bank_adapters.types import ParsedStatement, StatementFormat

__all__ = [
    "DEFAULT_LIMITS",
    "StatementLimits",
    "parse_camt053",
    "parse_csv_statement",
    "parse_mt940",
    "parse_statement",
]


def parse_statement(
    data: bytes, fmt: StatementFormat, *, limits: StatementLimits = DEFAULT_LIMITS
) -> ParsedStatement:
    """Parse ``data`` in the given format (for files finance uploads)."""
    match fmt:
        case StatementFormat.CAMT053:
            return parse_camt053(data, limits=limits)
        case StatementFormat.MT940:
            return parse_mt940(data, limits=limits)
        case StatementFormat.CSV:
            return parse_csv_statement(data, limits=limits)
