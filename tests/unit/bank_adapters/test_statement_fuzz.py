"""Every statement parser, fed arbitrary bytes or a damaged file of its
format, either reads it or refuses it with a ``StatementParseError`` that
names where and why; nothing else escapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_adapters.simulators.render import SimLine, render_camt053, render_csv, render_mt940
from bank_adapters.statements import parse_camt053, parse_csv_statement, parse_mt940
from tests.unit.bank_adapters.strategies import (
    FUZZ,
    STATEMENT_DATE,
    bank_contents,
    damaged,
    free_contents,
    only_clean_refusals,
    sim_lines,
)

_ACCOUNT = "0011001234567"


def _camt053(lines: list[SimLine]) -> bytes:
    created = datetime(2024, 5, 16, 1, 0, tzinfo=UTC)
    return render_camt053(_ACCOUNT, STATEMENT_DATE, 0, lines, created_at=created)


def _mt940(lines: list[SimLine]) -> bytes:
    return render_mt940(_ACCOUNT, STATEMENT_DATE, 0, lines)


# Per format: the parser, how long arbitrary input gets, and its valid files.
_FORMATS: dict[str, tuple[Callable[[bytes], object], int, st.SearchStrategy[bytes]]] = {
    "camt053": (parse_camt053, 3000, sim_lines(contents=free_contents).map(_camt053)),
    "mt940": (parse_mt940, 2000, sim_lines(contents=bank_contents).map(_mt940)),
    "csv": (parse_csv_statement, 2000, sim_lines(contents=bank_contents).map(render_csv)),
}


@pytest.mark.parametrize("fmt", sorted(_FORMATS))
@FUZZ
@given(data=st.data())
def test_arbitrary_bytes_only_raise_the_parse_error(fmt: str, data: st.DataObject) -> None:
    parse, size_max, _ = _FORMATS[fmt]
    only_clean_refusals(parse, data.draw(st.binary(max_size=size_max)))


@pytest.mark.parametrize("fmt", sorted(_FORMATS))
@FUZZ
@given(data=st.data())
def test_damaged_files_only_raise_the_parse_error(fmt: str, data: st.DataObject) -> None:
    parse, _, files = _FORMATS[fmt]
    only_clean_refusals(parse, data.draw(damaged(files)))
