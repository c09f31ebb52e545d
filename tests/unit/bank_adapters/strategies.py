"""Hypothesis strategies and settings shared by the bank adapter tests, and
the checks every statement parser's tests make."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bank_adapters.simulators.render import SimLine
from bank_adapters.text import bank_transfer_content
from bank_adapters.types import Direction, StatementLine, StatementParseError
from domain.business_time import VIETNAM_TZ

# Sized so that all parser properties together stay within a few seconds.
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STATEMENT_DATE = date(2024, 5, 15)
_DAY_START = datetime.combine(STATEMENT_DATE, time(0), tzinfo=VIETNAM_TZ)

accounts = st.text(alphabet="0123456789ABCDEFXYZ", min_size=1, max_size=34)
# Account numbers as MT940's supplementary details carry them: a Vietnamese
# account (digits) or an IBAN. Other text there is not a counterparty.
account_numbers = st.one_of(
    st.from_regex(r"[0-9]{6,19}", fullmatch=True),
    st.from_regex(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", fullmatch=True),
)
amounts = st.integers(min_value=1, max_value=10**12)
# What a Vietnamese bank keeps of any content.
bank_contents = st.text(max_size=80).map(bank_transfer_content)
# Free text as the REST bank keeps it (printable, trimmed, single spaces).
free_contents = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp")),
    max_size=120,
).map(lambda text: " ".join(text.split()))


@st.composite
def sim_lines(
    draw: st.DrawFn,
    *,
    contents: st.SearchStrategy[str],
    counterparties: st.SearchStrategy[str] = accounts,
) -> list[SimLine]:
    count = draw(st.integers(min_value=0, max_value=12))
    lines = []
    for number in range(count):
        seconds = draw(st.integers(min_value=0, max_value=86_399))
        micros = draw(st.integers(min_value=0, max_value=999_999))
        direction = draw(st.sampled_from(["C", "D"]))
        lines.append(
            SimLine(
                bank_ref=f"FT240515{number:08d}",
                booked_at=(_DAY_START + timedelta(seconds=seconds, microseconds=micros)).astimezone(
                    UTC
                ),
                amount_vnd=draw(amounts),
                direction=direction,
                counterparty=draw(st.one_of(st.just(""), counterparties)),
                content=draw(contents),
                end_to_end_ref=draw(
                    st.one_of(st.none(), st.from_regex(r"[a-z0-9\-]{1,40}", fullmatch=True))
                ),
            )
        )
    return sorted(lines, key=lambda line: line.booked_at)


openings = st.integers(min_value=-(10**12), max_value=10**12)


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """A valid file, damaged the way files get damaged: bytes dropped,
    inserted, replaced, lines repeated or swapped."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "repeat_line", "swap_lines"]))
        position = draw(st.integers(min_value=0, max_value=max(len(out) - 1, 0)))
        if kind == "delete" and out:
            length = draw(st.integers(min_value=1, max_value=40))
            del out[position : position + length]
        elif kind == "insert":
            out[position:position] = draw(st.binary(min_size=1, max_size=20))
        elif kind == "replace" and out:
            out[position] = draw(st.integers(min_value=0, max_value=255))
        else:
            lines = bytes(out).split(b"\n")
            i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            if kind == "repeat_line":
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\n".join(lines))
    return bytes(out)


def only_clean_refusals(parse: Callable[[bytes], object], data: bytes) -> None:
    """Parse ``data``: it may be read or refused, but a refusal must be a
    ``StatementParseError`` that names where and why; anything else raised
    fails the test."""
    error: StatementParseError | None = None
    try:
        parse(data)
    except StatementParseError as exc:
        error = exc
    if error is not None:
        assert error.where, error
        assert error.reason, error


def damaged(files: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A file from ``files``, damaged by ``mutations``."""
    return files.flatmap(mutations)


def assert_refused(parse: Callable[[bytes], object], data: bytes, where: str, reason: str) -> None:
    """``parse`` refuses ``data`` with a ``StatementParseError`` at ``where``
    whose reason contains ``reason``."""
    with pytest.raises(StatementParseError) as caught:
        parse(data)
    assert caught.value.where == where
    assert reason in caught.value.reason


_COLUMNS = ("bank_ref", "booked_at", "amount_vnd", "direction", "counterparty", "content")


def read_rows(lines: Iterable[StatementLine], *more: str) -> list[tuple[object, ...]]:
    """Parsed lines as rows of what every format carries, and the ``more`` columns."""
    return [tuple(getattr(line, name) for name in (*_COLUMNS, *more)) for line in lines]


def sim_rows(
    lines: Iterable[SimLine], *more: str, booked_at: datetime | None = None
) -> list[tuple[object, ...]]:
    """The rows a parser should read from the simulator's ``lines``
    (``booked_at`` for a format that carries the booking date only)."""
    return [
        (
            line.bank_ref,
            booked_at or line.booked_at,
            line.amount_vnd,
            Direction.CREDIT if line.direction == "C" else Direction.DEBIT,
            line.counterparty,
            line.content,
            *(getattr(line, name) for name in more),
        )
        for line in lines
    ]
