"""What the three statement parsers share: limits, amounts, the final checks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Final

from bank_adapters.types import (
    Direction,
    StatementFormat,
    StatementLine,
    StatementParseError,
)
from domain.business_time import VIETNAM_TZ
from domain.money import AMOUNT_VND_MAX

RAW_LENGTH_MAX: Final = 2000
FIELD_LENGTH_MAX: Final = 500
# Transfer content: SWIFT's 6 x 65 characters, as banks stretch it (a dozen
# :86: lines, several camt.053 Ustrd of 140).
CONTENT_LENGTH_MAX: Final = 2000
BANK_REF_LENGTH_MAX: Final = 64
# A booking outside these years is a corrupt file, and the bound keeps time
# zone arithmetic away from datetime's own limits.
_YEAR_MIN: Final = 1990
_YEAR_MAX: Final = 2200
_WHOLE_AMOUNT_RE: Final = re.compile(r"(\d{1,16})(?:[.,](\d{0,6}))?", re.ASCII)


@dataclass(frozen=True, slots=True)
class StatementLimits:
    """Bounds on what one statement file may hold. A file over any of them
    is refused as a whole."""

    bytes_max: int = 64 * 1024 * 1024
    entries_max: int = 1_000_000
    xml_depth_max: int = 32
    xml_elements_max: int = 5_000_000

    def __post_init__(self) -> None:
        assert self.bytes_max > 0
        assert self.entries_max > 0
        assert self.xml_depth_max > 0
        assert self.xml_elements_max > 0


DEFAULT_LIMITS: Final = StatementLimits()


def check_size(fmt: StatementFormat, data: bytes, limits: StatementLimits) -> None:
    if len(data) > limits.bytes_max:
        raise StatementParseError(
            fmt, "file", f"{len(data)} bytes is more than the limit of {limits.bytes_max}"
        )
    if not data.strip():
        raise StatementParseError(fmt, "file", "empty")


def decoded_text(fmt: StatementFormat, data: bytes, limits: StatementLimits) -> str:
    """A text statement's bytes as text (UTF-8, a BOM dropped), once its size is checked."""
    check_size(fmt, data, limits)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StatementParseError(fmt, f"line {line}", "not UTF-8 text") from None


def parse_whole_vnd(fmt: StatementFormat, where: str, text: str) -> int:
    """``"500000"``, ``"500000,"``, ``"500000.00"`` → 500000. VND has no
    minor unit, so a non-zero fraction is an error, never rounded."""
    match = _WHOLE_AMOUNT_RE.fullmatch(text)
    if match is None:
        raise StatementParseError(fmt, where, f"amount {text[:40]!r} is not a number of đồng")
    whole, fraction = match.group(1), match.group(2) or ""
    if fraction.strip("0"):
        raise StatementParseError(fmt, where, f"amount {text!r} has a fraction of a đồng")
    return int(whole)


def check_amount(fmt: StatementFormat, where: str, amount_vnd: int) -> None:
    if not 0 < amount_vnd <= AMOUNT_VND_MAX:
        raise StatementParseError(
            fmt, where, f"amount {amount_vnd} is outside 1..{AMOUNT_VND_MAX} đồng"
        )


def check_text(fmt: StatementFormat, where: str, what: str, value: str, length_max: int) -> str:
    if len(value) > length_max:
        raise StatementParseError(fmt, where, f"{what} longer than {length_max} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise StatementParseError(fmt, where, f"{what} contains control characters")
    return value


def check_bank_ref(fmt: StatementFormat, where: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise StatementParseError(fmt, where, "bank reference missing")
    return check_text(fmt, where, "bank reference", value, BANK_REF_LENGTH_MAX)


def derived_bank_ref(prefix: str, parts: Sequence[str], seen: dict[str, int]) -> str:
    """A bank reference for an entry the bank gave none: ``PREFIX-`` and 20
    hex digits of a SHA-256 of the entry's own fields, so the same booking
    read again (a statement sent twice) gets the same reference, and
    ``-2``, ``-3``... for the second and third identical entries of one file
    (``seen`` counts them). It uses only the reference alphabet
    ``[A-Za-z0-9-]`` and stays under 64 characters."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]
    base = f"{prefix}-{digest}"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def vietnam_day_start_utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=VIETNAM_TZ).astimezone(UTC)


def to_utc(moment: datetime) -> datetime:
    """Times without an offset are Vietnam time, as banks here write them."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VIETNAM_TZ)
    if not _YEAR_MIN <= moment.year <= _YEAR_MAX:
        raise ValueError(f"year {moment.year} outside {_YEAR_MIN}..{_YEAR_MAX}")
    return moment.astimezone(UTC)


def clip_raw(raw: str) -> str:
    return raw if len(raw) <= RAW_LENGTH_MAX else raw[: RAW_LENGTH_MAX - 1] + "…"


def signed(line: StatementLine) -> int:
    return line.amount_vnd if line.direction is Direction.CREDIT else -line.amount_vnd


def check_unique_refs(fmt: StatementFormat, lines: Iterable[StatementLine]) -> None:
    """A bank reference names one booking; seeing it twice would import one
    booking twice."""
    first_seen: dict[str, int] = {}
    for index, line in enumerate(lines):
        if line.bank_ref in first_seen:
            first = first_seen[line.bank_ref]
            raise StatementParseError(
                fmt,
                f"entry #{index + 1} (line {line.source_line})",
                f"bank reference {line.bank_ref!r} repeated (first in entry #{first + 1})",
            )
        first_seen[line.bank_ref] = index


def check_balances(
    fmt: StatementFormat,
    where: str,
    opening_vnd: int,
    closing_vnd: int,
    lines: Iterable[StatementLine],
) -> None:
    total = opening_vnd + sum(signed(line) for line in lines)
    if total != closing_vnd:
        raise StatementParseError(
            fmt,
            where,
            f"closing balance {closing_vnd} does not equal opening balance {opening_vnd} "
            f"plus the entries ({total}): a line is missing or extra",
        )
