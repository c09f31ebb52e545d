"""The row mapper: a dataclass built from a row's columns by name, and the
select list that gives a query those columns."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from ledger.core import tables as t
from ledger.core.rows import columns, field_names, row_mapper


@dataclass(frozen=True)
class Thing:
    id: int
    name: str


@dataclass(frozen=True)
class Single:
    id: int


@dataclass(frozen=True)
class PaymentFine:
    id: int
    status: str
    decision_key: str
    fine_amount_vnd: int


def test_a_row_becomes_its_dataclass_and_extra_columns_are_ignored() -> None:
    assert row_mapper(Thing)(SimpleNamespace(id=1, name="a", extra=True)) == Thing(1, "a")
    assert row_mapper(Single)(SimpleNamespace(id=7)) == Single(7)
    assert field_names(Thing) == ("id", "name")


def test_a_prefix_reads_one_dataclass_out_of_a_wider_row() -> None:
    row = SimpleNamespace(id=1, name="outer", p_id=2, p_name="inner")
    assert row_mapper(Thing, prefix="p_")(row) == Thing(2, "inner")


def test_a_missing_column_names_the_dataclass_and_the_column() -> None:
    with pytest.raises(KeyError, match="Thing: the row has no column 'name'"):
        row_mapper(Thing)(SimpleNamespace(id=1))


def test_columns_come_from_the_table_or_from_where_they_are_named() -> None:
    selected = columns(
        PaymentFine,
        t.payments,
        decision_key=t.fines.c.decision_key,
        fine_amount_vnd=t.fines.c.amount_vnd,
    )
    query = select(*selected).join(t.fines, t.fines.c.id == t.payments.c.fine_id)
    assert list(query.selected_columns.keys()) == list(field_names(PaymentFine))
    sql = str(query)
    assert "payments.id, payments.status, fines.decision_key," in sql
    assert "fines.amount_vnd AS fine_amount_vnd" in sql


def test_columns_with_a_prefix_are_labelled_and_unknown_fields_refused() -> None:
    labelled = select(*columns(Thing, t.api_tokens, prefix="p_"))
    assert list(labelled.selected_columns.keys()) == ["p_id", "p_name"]
    with pytest.raises(AssertionError, match="no field 'nope'"):
        columns(Thing, t.api_tokens, nope=t.fines.c.id)
    with pytest.raises(KeyError):
        columns(PaymentFine, t.payments)
