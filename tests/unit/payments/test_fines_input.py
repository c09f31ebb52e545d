"""Decision-number normalisation and fine input validation (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.errors import ValidationError
from ledger.fines import FineInput, normalise_decision_number


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("01234/QĐ-XPHC", "01234/qd-xphc"),
        ("01234/qd-xphc", "01234/qd-xphc"),
        ("  01234/QD-XPHC  ", "01234/qd-xphc"),
        ("01234 / QĐ - XPHC", "01234/qd-xphc"),
        ("01234/qđ-xphc", "01234/qd-xphc"),
        ("01234/QÐ-XPHC".replace("Ð", "Đ"), "01234/qd-xphc"),
        ("12/QĐ   XPHC", "12/qd xphc"),
        ("0０1", "001"),  # full-width digit from a phone keyboard
    ],
)
def test_normalisation(typed: str, key: str) -> None:
    assert normalise_decision_number(typed) == key


@pytest.mark.parametrize("bad", ["", "   ", "/abc", "a" * 65, "01<script>", "12;DROP"])
def test_bad_decision_numbers_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        normalise_decision_number(bad)
    assert err.value.field == "decision_number"


@given(st.text(alphabet="0123456789/-. QĐđqdXPHCxphcÀàé", min_size=1, max_size=40))
def test_normalisation_is_idempotent_and_case_blind(raw: str) -> None:
    try:
        key = normalise_decision_number(raw)
    except ValidationError:
        return
    assert normalise_decision_number(key) == key
    assert normalise_decision_number(raw.upper()) == key
    assert normalise_decision_number(raw.lower()) == key


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision_number": "01234/QĐ-XPHC",
        "amount_vnd": 800_000,
        "violator_name": "Nguyễn Văn A",
        "plate": "29A-123.45",
        "issuing_unit": "Phòng CSGT Hà Nội",
        "violation": "Vượt đèn đỏ",
    }
    body.update(overrides)
    return body


def test_valid_body() -> None:
    fine = FineInput.from_json(_body(), max_amount_vnd=1_000_000_000)
    assert fine.amount_vnd == 800_000
    assert fine.decision_key == "01234/qd-xphc"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount_vnd": "800000"}, "amount_vnd"),
        ({"amount_vnd": 800000.0}, "amount_vnd"),
        ({"amount_vnd": True}, "amount_vnd"),
        ({"amount_vnd": 0}, "amount_vnd"),
        ({"amount_vnd": -5}, "amount_vnd"),
        ({"amount_vnd": 1_000_000_001}, "amount_vnd"),
        ({"amount_vnd": None}, "amount_vnd"),
        ({"plate": ""}, "plate"),
        ({"violator_name": 5}, "violator_name"),
        ({"decision_number": "!!"}, "decision_number"),
        ({"extra": 1}, "extra"),
        ({"violation": "x" * 201}, "violation"),
    ],
)
def test_invalid_bodies_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        FineInput.from_json(_body(**overrides), max_amount_vnd=1_000_000_000)
    assert err.value.field == field


def test_body_must_be_an_object() -> None:
    with pytest.raises(ValidationError) as err:
        FineInput.from_json([1, 2], max_amount_vnd=10)
    assert err.value.field == "body"
