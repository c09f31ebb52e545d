"""The shared domain values: bounds, formats, business time and keys."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.business_time import (
    VIETNAM_TZ,
    VIETNAM_UTC_OFFSET,
    business_date,
    business_day_start,
)
from domain.formats import ACCOUNT_LENGTH_MAX, is_account, is_bank_ref
from domain.keys import (
    DEBIT_KEY_LENGTH_MAX,
    external_debit_key,
    external_debit_key_sql,
    suspense_key,
    suspense_key_sql,
)
from domain.money import AMOUNT_VND_MAX, is_amount_vnd


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        (AMOUNT_VND_MAX, True),
        (0, False),
        (-5, False),
        (AMOUNT_VND_MAX + 1, False),
        (True, False),
        (1.0, False),
        ("1", False),
    ],
)
def test_an_amount_is_a_positive_bounded_whole_number_of_dong(value: object, ok: bool) -> None:
    assert is_amount_vnd(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0123456789", True),
        ("A" * ACCOUNT_LENGTH_MAX, True),
        ("A" * (ACCOUNT_LENGTH_MAX + 1), False),
        ("", False),
        ("12 34", False),
        ("１２３", False),  # full-width digits are not ASCII digits
        ("123\n", False),
        (123, False),
    ],
)
def test_account_format(value: object, ok: bool) -> None:
    assert is_account(value) is ok


def test_bank_ref_format_refuses_what_would_need_escaping() -> None:
    assert is_bank_ref("FT24001.A-1:2_3")
    assert not is_bank_ref("a/b")
    assert not is_bank_ref("x" * 101)


@given(st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2200, 1, 1)))
def test_the_fixed_offset_agrees_with_the_time_zone_database(naive: datetime) -> None:
    at = naive.replace(tzinfo=UTC)
    assert at.astimezone(VIETNAM_TZ).utcoffset() == VIETNAM_UTC_OFFSET
    assert business_date(at) == (at + VIETNAM_UTC_OFFSET).date()


def test_a_business_day_starts_at_17_utc_the_day_before() -> None:
    start = business_day_start(date(2026, 12, 3))
    assert start == datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
    assert business_date(start) == date(2026, 12, 3)
    assert business_date(start - timedelta(microseconds=1)) == date(2026, 12, 2)


def test_keys_are_derived_from_business_ids_and_bounded() -> None:
    assert external_debit_key("sgbank", "FT1") == "ext-sgbank-FT1"
    assert len(external_debit_key("sgbank", "x" * 300)) == DEBIT_KEY_LENGTH_MAX
    assert suspense_key("hnbank", "R9") == "suspense:hnbank:R9"


@pytest.mark.parametrize("operand", ["'x'", "a; DROP TABLE t", "t.bank_ref || 'x'", ":1a", ""])
def test_sql_keys_take_only_bind_parameters_or_columns(operand: str) -> None:
    with pytest.raises(AssertionError):
        external_debit_key_sql(":bank", operand)
    with pytest.raises(AssertionError):
        suspense_key_sql(operand, "t.bank_ref")
