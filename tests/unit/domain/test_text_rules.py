"""The character rules of accepted text, the spreadsheet guard, what a
public page shows of a person, and the typed length of a decision number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.decision_numbers import DecisionNumberError, normalise_decision_number
from domain.privacy import mask_name, mask_plate
from domain.text import spreadsheet_safe, unsafe_character

REFUSED = [
    ("\x00", "U+0000"),
    ("\x1b", "U+001B"),
    ("\x7f", "U+007F"),
    ("\x85", "U+0085"),
    ("\u200b", "U+200B"),
    ("\u200f", "U+200F"),
    ("\u202a", "U+202A"),
    ("\u202e", "U+202E"),
    ("\u2066", "U+2066"),
    ("\u2069", "U+2069"),
    ("\ufeff", "U+FEFF"),
    ("\ud800", "U+D800"),
    ("\udfff", "U+DFFF"),
    ("\u2028", "U+2028"),
]


@pytest.mark.parametrize(("char", "named"), REFUSED)
def test_controls_invisible_and_bidi_characters_are_refused(char: str, named: str) -> None:
    assert unsafe_character(f"Nguyễn {char}Văn") == named
    assert unsafe_character(f"Nguyễn {char}Văn", multiline=True) == named


def test_line_breaks_only_in_multiline_text() -> None:
    for char in "\t\n\r":
        assert unsafe_character(f"a{char}b") is not None
        assert unsafe_character(f"a{char}b", multiline=True) is None


def test_vietnamese_and_ordinary_text_is_accepted() -> None:
    for text in ("Nguyễn Văn Đức", "01234/QĐ-XPHC", "29A-123.45", "Phường Bến Nghé, Q.1", "ǅ ß €"):
        assert unsafe_character(text) is None


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "\tanything", "\uff1d1", "-", "=", "@"],
)
def test_a_cell_a_spreadsheet_would_run_is_quoted(cell: str) -> None:
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-5", "1500000", "", "Nguyễn", " =1", "a=1", "0"])
def test_plain_cells_stay_as_they_are(cell: str) -> None:
    assert spreadsheet_safe(cell) == cell


@given(st.text(max_size=30))
def test_no_guarded_cell_starts_a_formula(text: str) -> None:
    cell = spreadsheet_safe(text)
    assert cell[:1] not in set("=+@\t\r") or cell.lstrip("-").isdigit()


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Nguyễn Văn An", "Nguyễn V. A."),
        ("Nguyễn Văn A", "Nguyễn V. A."),
        ("  trần   thị  bích ", "trần T. B."),
        ("Đức", "Đ."),
        ("", ""),
    ],
)
def test_a_name_keeps_its_family_name_and_initials(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("plate", "masked"),
    [
        ("29A-123.45", "29A-***.45"),
        ("51F-999.99 ", "51F-***.99"),
        ("30E12345", "30E***45"),
        ("AB1", "*B1"),
    ],
)
def test_a_plate_keeps_its_province_series_and_last_two(plate: str, masked: str) -> None:
    assert mask_plate(plate) == masked


def test_a_decision_number_is_bounded_as_typed_not_only_as_its_key() -> None:
    """A letter and 100 combining accents has a one-letter key: it passed
    the key's bound, then broke the database's length check (a 500)."""
    with pytest.raises(DecisionNumberError, match="longer than 64"):
        normalise_decision_number("a" + "\u0301" * 100)
    with pytest.raises(DecisionNumberError, match="longer than 64"):
        normalise_decision_number("1" * 10_000)
    # Decomposed Vietnamese (ê as e and a combining circumflex) counts as
    # the database stores it, composed (NFC): 68 code points, 64 characters.
    decomposed = "1" * 60 + "e\u0302" * 4
    assert normalise_decision_number(decomposed) == "1" * 60 + "eeee"
