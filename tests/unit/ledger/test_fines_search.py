"""The search keys of plates and names: typed any way, one key; the
migration's SQL fold uses the same table as the Python one."""

from __future__ import annotations

import importlib
import unicodedata

import pytest

from ledger.core.errors import ValidationError
from ledger.fines_search import FOLD_FROM, FOLD_TO, FineSearch, fold_name, plate_key

MIGRATION = importlib.import_module("ledger.migrations.versions.0014_fine_search")


def test_the_migration_folds_with_the_same_table() -> None:
    assert (MIGRATION.FOLD_FROM, MIGRATION.FOLD_TO) == (FOLD_FROM, FOLD_TO)
    assert FOLD_FROM in MIGRATION.UPGRADE
    assert FOLD_TO in MIGRATION.UPGRADE


def test_each_letter_folds_to_its_base_in_lower_case() -> None:
    assert len(FOLD_FROM) == len(FOLD_TO)
    for letter, folded in zip(FOLD_FROM, FOLD_TO, strict=True):
        base = "d" if letter in "Đđ" else unicodedata.normalize("NFD", letter)[0].lower()
        assert folded == base, letter
    for letter in "ăâđêôơưĂÂĐÊÔƠƯảạẫỹỵ":
        assert fold_name(letter).isascii(), letter


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("Nguyễn Văn A", "nguyen van a"),
        ("  NGUYỄN   VĂN  A ", "nguyen van a"),
        ("Đặng Thị Ánh", "dang thi anh"),
        (unicodedata.normalize("NFD", "Trần Đức Ưng"), "tran duc ung"),
        ("<b>x</b>", "<b>x</b>"),
    ],
)
def test_names_fold(typed: str, key: str) -> None:
    assert fold_name(typed) == key


@pytest.mark.parametrize("typed", ["51F-123.45", "51f12345", " 51 f.123-45 ", "51F—123·45"])
def test_plates_are_their_letters_and_digits(typed: str) -> None:
    assert plate_key(typed) == "51F12345"


@pytest.mark.parametrize(
    ("search", "field"),
    [
        ({"plate": "-.-"}, "plate"),
        ({"name": "   "}, "name"),
        ({"name": "a" * 201}, "name"),
        ({"status": "lost"}, "status"),
        ({"unit": "u" * 201}, "unit"),
    ],
)
def test_a_search_names_what_is_wrong(search: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FineSearch(**search)
    assert caught.value.field == field


def test_a_search_holds_the_keys() -> None:
    search = FineSearch(plate="51f-12", name="Nguyễn V")
    assert (search.plate, search.name) == ("51F12", "nguyen v")
