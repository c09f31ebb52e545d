"""The row mapper: a dataclass built from a row's columns by name, and the
select list that gives a query those columns (shown on the ledger's own
row dataclasses)."""

from __future__ import annotations

from dataclasses import make_dataclass
from types import SimpleNamespace
from uuid import uuid4

import pytest
from sqlalchemy import select

from ledger.core import tables as t
from ledger.core.rows import columns, field_names, row_mapper
from ledger.payments import InDoubt
from ledger.receipts.issue import ReceiptRef


def test_a_row_becomes_its_dataclass_and_extra_columns_are_ignored() -> None:
    row = SimpleNamespace(series="S-2026", number=3, signature="sig", id=9)
    assert row_mapper(ReceiptRef)(row) == ReceiptRef("S-2026", 3, "sig")
    assert field_names(ReceiptRef) == ("series", "number", "signature")
    single = make_dataclass("Single", ["id"], frozen=True)
    assert row_mapper(single)(SimpleNamespace(id=7)) == single(7)


def test_a_prefix_reads_one_dataclass_out_of_a_wider_row() -> None:
    row = SimpleNamespace(series="outer", r_series="S-2026", r_number=3, r_signature="sig")
    assert row_mapper(ReceiptRef, prefix="r_")(row) == ReceiptRef("S-2026", 3, "sig")


def test_a_missing_column_names_the_dataclass_and_the_column() -> None:
    with pytest.raises(KeyError, match="ReceiptRef: the row has no column 'signature'"):
        row_mapper(ReceiptRef)(SimpleNamespace(series="S-2026", number=3))


def test_columns_come_from_the_table_or_from_where_they_are_named() -> None:
    selected = columns(
        InDoubt, t.payments, payment_id=t.payments.c.id, decision_key=t.fines.c.decision_key
    )
    query = select(*selected).join(t.fines, t.fines.c.id == t.payments.c.fine_id)
    assert list(query.selected_columns.keys()) == list(field_names(InDoubt))
    sql = str(query)
    assert "payments.id AS payment_id, payments.bank, fines.decision_key," in sql
    row = SimpleNamespace(
        payment_id=uuid4(), bank="sgbank", decision_key="1/qd", status="verifying", created_at=0
    )
    assert row_mapper(InDoubt)(row).bank == "sgbank"


def test_columns_with_a_prefix_are_labelled_and_unknown_fields_refused() -> None:
    labelled = select(*columns(ReceiptRef, t.receipts, prefix="r_"))
    assert list(labelled.selected_columns.keys()) == ["r_series", "r_number", "r_signature"]
    with pytest.raises(AssertionError, match="no field 'nope'"):
        columns(ReceiptRef, t.receipts, nope=t.fines.c.id)
    with pytest.raises(KeyError):
        columns(InDoubt, t.payments)
