"""The row mapper: a dataclass built from a row's columns by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ledger.core.rows import field_names, row_mapper


@dataclass(frozen=True)
class Thing:
    id: int
    name: str


class FakeRow:
    def __init__(self, **values: Any) -> None:
        self._mapping = values


def test_a_row_becomes_its_dataclass_and_extra_columns_are_ignored() -> None:
    assert row_mapper(Thing)(FakeRow(id=1, name="a", extra=True)) == Thing(1, "a")
    assert field_names(Thing) == ("id", "name")


def test_a_missing_column_names_the_dataclass_and_the_column() -> None:
    with pytest.raises(KeyError, match="Thing: the row has no column 'name'"):
        row_mapper(Thing)(FakeRow(id=1))
