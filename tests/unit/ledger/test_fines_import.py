"""A fines CSV is checked whole: every problem by line and column."""

from __future__ import annotations

import pytest

from ledger.core.errors import ValidationError
from ledger.fines_admin import (
    IMPORT_BYTES_MAX,
    FineImportError,
    LineError,
    amendment_from_json,
    parse_fines_csv,
)

HEADER = "decision_number,amount_vnd,violator_name,plate,issuing_unit,violation\n"
GOOD = "00001/QĐ-XPHC,800000,Nguyễn Văn A,29A-123.45,Đội 1,Vượt đèn đỏ\n"
MAX = 1_000_000_000


def _errors(text: str | bytes, units: tuple[str, ...] = ()) -> list[LineError]:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(FineImportError) as caught:
        parse_fines_csv(data, MAX, units)
    return list(caught.value.errors)


def test_a_good_file_gives_its_fines() -> None:
    data = "\ufeff" + HEADER + GOOD + "\n" + '00002/QĐ-XPHC,500000,"Trần, Thị B",30E-1,Đội 1,x\n'
    lines = parse_fines_csv(data.encode(), MAX)
    assert [(item.line, item.fine.violator_name) for item in lines] == [
        (2, "Nguyễn Văn A"),
        (4, "Trần, Thị B"),
    ]


def test_every_error_is_listed_by_line_and_column() -> None:
    text = (
        HEADER
        + GOOD
        + "00002/QĐ-XPHC,80.000,,29A,Đội 1,x\n"  # amount and name
        + "bad@number,0,A,B,Đội 1,x\n"  # decision number and amount
        + "00001/qd-xphc,800000,Nguyễn Văn A,29A-123.45,Đội 1,Vượt đèn đỏ\n"  # repeats line 2
        + "only,three,columns\n"
        + "00005/QĐ-XPHC,800000,A,B,Đội 9,x\n"  # another unit
    )
    found = [(e.line, e.column) for e in _errors(text, units=("Đội 1",))]
    assert found == [
        (3, "violator_name"),
        (3, "amount_vnd"),
        (4, "decision_number"),
        (4, "amount_vnd"),
        (5, "decision_number"),
        (6, "row"),
        (7, "issuing_unit"),
    ]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"", (1, "header")),
        (b"a,b\n", (1, "header")),
        ((HEADER + GOOD).encode("utf-16"), (0, "file")),
        (b"x" * (IMPORT_BYTES_MAX + 1), (0, "file")),
        ((HEADER + GOOD + '00001,"unclosed\n').encode(), (3, "file")),
    ],
)
def test_a_file_that_is_not_one_is_refused_whole(data: bytes, where: tuple[int, str]) -> None:
    assert [(e.line, e.column) for e in _errors(data)][:1] == [where]


def test_an_amendment_names_what_it_changes_and_why() -> None:
    changes = amendment_from_json(
        {"amount_vnd": 900_000, "due_date": "2026-01-31", "reason": "typo"}, MAX
    )
    assert changes["amount_vnd"] == 900_000
    assert str(changes["due_date"]) == "2026-01-31"
    for body, field in (
        ({"reason": "x"}, "body"),
        ({"amount_vnd": 5}, "reason"),
        ({"amount_vnd": -1, "reason": "x"}, "amount_vnd"),
        ({"due_date": "31/01/2026", "reason": "x"}, "due_date"),
        ({"plate": " ", "reason": "x"}, "plate"),
        ({"issuing_unit": "Đội 9", "reason": "x"}, "issuing_unit"),
    ):
        with pytest.raises(ValidationError) as caught:
            amendment_from_json(body, MAX)
        assert caught.value.field == field, body
