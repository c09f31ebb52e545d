"""Receipt series codes and business years."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.text import strip_diacritics
from ledger.receipts.issue import business_year, series_code, unit_code

SERIES_CHECK = re.compile(r"^[A-Z0-9-]{1,40}$")  # the receipt_series CHECK


@pytest.mark.parametrize(
    ("unit", "code"),
    [
        ("Đội CSGT số 1 - Công an quận Hoàn Kiếm", "DCSGTS1CAQHK"),
        ("Phòng Cảnh sát giao thông Công an TP Hà Nội", "PCSGTCATPHN"),
        ("Phòng CSGT (PC08) Công an tỉnh Đồng Nai", "PCSGTPC08CATDN"),
        ("Đội Cảnh sát giao thông đường bộ số 3", "DCSGTDBS3"),
        # All in capitals: every word gives its initial (no acronym guessing).
        ("ĐỘI CSGT SỐ 1", "DCS1"),
        ("  đội   csgt  số 7 ", "DCS7"),
        ("Trạm CSGT Đắk Lắk", "TCSGTDL"),
    ],
)
def test_unit_codes(unit: str, code: str) -> None:
    assert unit_code(unit) == code
    assert series_code(unit, 2025) == f"{code}-2025"


def test_strip_diacritics_folds_vietnamese_including_d_with_stroke() -> None:
    assert strip_diacritics("Đặng Thị Ưởng, đường Nguyễn Huệ") == "Dang Thi Uong, duong Nguyen Hue"


def test_decomposed_and_composed_spellings_give_the_same_code() -> None:
    import unicodedata

    unit = "Đội CSGT số 1 - Công an quận Hoàn Kiếm"
    assert series_code(unicodedata.normalize("NFD", unit), 2025) == series_code(unit, 2025)


def test_long_names_are_bounded() -> None:
    unit = " ".join(["Phòng"] * 80)
    assert unit_code(unit) == "P" * 30
    assert series_code(unit, 2025) == "P" * 30 + "-2025"


def test_names_without_latin_letters_get_a_stable_hashed_code() -> None:
    code = series_code("——", 2025)
    assert re.fullmatch(r"DV[A-Z2-7]{6}-2025", code)
    assert series_code("——", 2025) == code
    assert series_code("……", 2025) != code


def test_disambiguated_code_differs_by_unit_and_is_stable() -> None:
    a = series_code("Công an quận Ba Đình", 2025, disambiguate=True)
    b = series_code("Công an quận Bình Định", 2025, disambiguate=True)
    assert series_code("Công an quận Ba Đình", 2025) == series_code("Công an quận Bình Định", 2025)
    assert a != b
    assert a.startswith("CAQBD-")
    assert a.endswith("-2025")
    assert a == series_code("Công an quận Ba Đình", 2025, disambiguate=True)
    # Spacing and case do not make another unit.
    assert a == series_code("công an  quận Ba Đình ", 2025, disambiguate=True)


@pytest.mark.parametrize("year", [1999, 2201])
def test_year_out_of_range_is_refused(year: int) -> None:
    with pytest.raises(ValueError, match="year"):
        series_code("Đội CSGT số 1", year)


@given(st.text(max_size=300), st.integers(min_value=2000, max_value=2200), st.booleans())
def test_any_unit_name_gives_a_valid_series(unit: str, year: int, disambiguate: bool) -> None:
    code = series_code(unit, year, disambiguate=disambiguate)
    assert SERIES_CHECK.match(code)
    assert code.endswith(f"-{year}")
    assert len(code) <= 30 + 5
    assert code == series_code(unit, year, disambiguate=disambiguate)


@pytest.mark.parametrize(
    ("at", "year"),
    [
        (datetime(2024, 12, 31, 16, 59, 59, tzinfo=UTC), 2024),  # 23:59:59 in Hanoi
        (datetime(2024, 12, 31, 17, 0, 0, tzinfo=UTC), 2025),  # midnight in Hanoi
        (datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=7))), 2025),
        (datetime(2025, 6, 1, 12, 0, tzinfo=UTC), 2025),
    ],
)
def test_business_year_is_the_year_in_vietnam(at: datetime, year: int) -> None:
    assert business_year(at) == year


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        business_year(datetime(2025, 1, 1))
