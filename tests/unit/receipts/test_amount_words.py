"""Vietnamese amount in words, as receipts print it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.receipts.amount_words import AMOUNT_VND_MAX, amount_in_words_vi

CASES = [
    (1, "Một đồng"),
    (4, "Bốn đồng"),
    (5, "Năm đồng"),
    (10, "Mười đồng"),
    (11, "Mười một đồng"),
    (15, "Mười lăm đồng"),
    (20, "Hai mươi đồng"),
    (21, "Hai mươi mốt đồng"),
    (25, "Hai mươi lăm đồng"),
    (101, "Một trăm linh một đồng"),
    (105, "Một trăm linh năm đồng"),
    (110, "Một trăm mười đồng"),
    (115, "Một trăm mười lăm đồng"),
    (121, "Một trăm hai mươi mốt đồng"),
    (1000, "Một nghìn đồng"),
    (1005, "Một nghìn không trăm linh năm đồng"),
    (1010, "Một nghìn không trăm mười đồng"),
    (2024, "Hai nghìn không trăm hai mươi bốn đồng"),
    (10_005, "Mười nghìn không trăm linh năm đồng"),
    (105_000, "Một trăm linh năm nghìn đồng"),
    (500_000, "Năm trăm nghìn đồng"),
    (1_000_000, "Một triệu đồng"),
    (1_000_100, "Một triệu một trăm đồng"),
    (1_001_000, "Một triệu không trăm linh một nghìn đồng"),
    (1_250_000, "Một triệu hai trăm năm mươi nghìn đồng"),
    (1_500_000, "Một triệu năm trăm nghìn đồng"),
    (3_000_050, "Ba triệu không trăm năm mươi đồng"),
    (10_000_000, "Mười triệu đồng"),
    (35_000_000, "Ba mươi lăm triệu đồng"),
    (1_000_000_000, "Một tỷ đồng"),
    (1_000_000_021, "Một tỷ không trăm hai mươi mốt đồng"),
    (1_000_000_000_000, "Một nghìn tỷ đồng"),
    (1_005_000_000_000, "Một nghìn không trăm linh năm tỷ đồng"),
    (10**15, "Một triệu tỷ đồng"),
    (
        123_456_789,
        "Một trăm hai mươi ba triệu bốn trăm năm mươi sáu nghìn bảy trăm tám mươi chín đồng",
    ),
]


@pytest.mark.parametrize(("amount_vnd", "words"), CASES)
def test_amount_in_words(amount_vnd: int, words: str) -> None:
    assert amount_in_words_vi(amount_vnd) == words


@pytest.mark.parametrize("amount_vnd", [0, -1, -1_000_000, AMOUNT_VND_MAX + 1])
def test_out_of_range_amounts_are_refused(amount_vnd: int) -> None:
    with pytest.raises(ValueError, match="between"):
        amount_in_words_vi(amount_vnd)


@pytest.mark.parametrize("amount", [1.5, 1000.0, True, "1000"])
def test_non_integer_amounts_are_refused(amount: object) -> None:
    with pytest.raises(ValueError, match="must be an int"):
        amount_in_words_vi(amount)  # type: ignore[arg-type]


# A reader of the words, written independently of the generator: if the words
# of every amount read back as that amount, no digit was dropped or misplaced.
_DIGIT_WORDS = {
    "không": 0,
    "một": 1,
    "mốt": 1,
    "hai": 2,
    "ba": 3,
    "bốn": 4,
    "năm": 5,
    "lăm": 5,
    "sáu": 6,
    "bảy": 7,
    "tám": 8,
    "chín": 9,
}
_SCALE_WORDS = {"nghìn": 10**3, "triệu": 10**6, "tỷ": 10**9}


def read_vietnamese_number(words: str) -> int:
    tokens = words.lower().split()
    assert tokens[-1] == "đồng"
    parts: list[int] = []  # values already multiplied by a scale, largest first
    small = 0  # the 0..999 being read
    digit: int | None = None
    for token in tokens[:-1]:
        if token in _DIGIT_WORDS:
            assert digit is None, words
            digit = _DIGIT_WORDS[token]
        elif token == "trăm":
            assert digit is not None, words
            small += digit * 100
            digit = None
        elif token == "mươi":
            assert digit is not None, words
            small += digit * 10
            digit = None
        elif token == "mười":
            small += 10
        elif token == "linh":
            assert small % 100 == 0, words
        elif token in _SCALE_WORDS:
            scale = _SCALE_WORDS[token]
            small += digit or 0
            digit = None
            lower = 0
            while parts and parts[-1] < scale:
                lower += parts.pop()
            parts.append((lower + small) * scale)
            small = 0
        else:
            raise AssertionError(f"unexpected word {token!r} in {words!r}")
    return sum(parts) + small + (digit or 0)


def test_reader_reads_the_table() -> None:
    for amount_vnd, words in CASES:
        assert read_vietnamese_number(words) == amount_vnd


amounts = st.one_of(
    st.integers(min_value=1, max_value=AMOUNT_VND_MAX),
    st.integers(min_value=1, max_value=100_000),
    # Round amounts with scattered zero groups, as fines are.
    st.builds(
        lambda digits, scale: max(1, digits * 10**scale),
        st.integers(min_value=1, max_value=999_999),
        st.integers(min_value=0, max_value=9),
    ),
)


@given(amounts)
def test_words_read_back_as_the_amount(amount_vnd: int) -> None:
    words = amount_in_words_vi(amount_vnd)
    assert words
    assert words[0].isupper()
    assert words[1:] == words[1:].lower()
    assert words.endswith(" đồng")
    assert "  " not in words
    assert read_vietnamese_number(words) == amount_vnd


@given(st.integers(min_value=1, max_value=AMOUNT_VND_MAX))
def test_spelling_rules(amount_vnd: int) -> None:
    tokens = amount_in_words_vi(amount_vnd).lower().split()
    for before, word in itertools.pairwise(tokens):
        if word == "mốt":
            assert before == "mươi"  # "mười một", "linh một", but "hai mươi mốt"
        if word == "lăm":
            assert before in {"mươi", "mười"}  # "linh năm", "năm trăm"
        if before == "linh":
            assert word in _DIGIT_WORDS
            assert word not in {"mốt", "lăm", "không"}
