"""Input checks: each refusal is a ValidationError naming its field."""

from __future__ import annotations

import pytest

from ledger.core.checks import (
    REASON_CHARS_MAX,
    check_amount,
    check_choice,
    check_limit,
    check_reason,
)
from ledger.core.errors import ValidationError


@pytest.mark.parametrize("value", ["800000", 800_000.0, True, 0, -5, 1_001, None])
def test_an_amount_is_a_json_integer_within_the_bound(value: object) -> None:
    with pytest.raises(ValidationError) as err:
        check_amount("amount_vnd", value, 1_000)
    assert err.value.field == "amount_vnd"


def test_amounts_at_the_bounds_pass() -> None:
    assert check_amount("amount_vnd", 1, 1_000) == 1
    assert check_amount("amount_vnd", 1_000, 1_000) == 1_000


def test_a_choice_lists_what_is_allowed_in_order() -> None:
    assert check_choice("status", "open", ("open", "closed")) == "open"
    with pytest.raises(ValidationError, match="status: must be one of open, closed"):
        check_choice("status", "shut", ("open", "closed"))
    with pytest.raises(ValidationError):
        check_choice("status", 1, ("open", "closed"))


def test_a_limit_is_within_one_and_its_bound() -> None:
    assert check_limit(500, 500) == 500
    for limit in (0, 501):
        with pytest.raises(ValidationError, match=r"limit: must be in 1\.\.500"):
            check_limit(limit, 500)


def test_a_reason_is_trimmed_bounded_and_printable() -> None:
    assert check_reason("reason", "  seen the statement\n", required=True) == "seen the statement"
    assert check_reason("reason", None, required=False) == ""
    refused = [(" ", True), ("x" * (REASON_CHARS_MAX + 1), False), ("a\x07b", False), (5, False)]
    for reason, required in refused:
        with pytest.raises(ValidationError) as err:
            check_reason("reason", reason, required=required)
        assert err.value.field == "reason"
