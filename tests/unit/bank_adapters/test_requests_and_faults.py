"""Requests refuse values no bank could take; fault specs are validated."""

from __future__ import annotations

import pytest

from bank_adapters.simulators.faults import FaultMode, FaultSpecError, flap_down, parse_fault
from bank_adapters.types import DebitRequest, InvalidRequestError, RefundRequest


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount_vnd": 0},
        {"amount_vnd": -5},
        {"amount_vnd": 10**15 + 1},
        {"amount_vnd": 1.0},
        {"amount_vnd": True},
        {"idempotency_key": ""},
        {"idempotency_key": "has space"},
        {"idempotency_key": "k" * 101},
        {"decision_number": "  "},
        {"decision_number": "x\n"},
        {"payer_account": "12-34"},
    ],
)
def test_debit_request_validation(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {
        "idempotency_key": "pay-1",
        "decision_number": "1/QĐ",
        "amount_vnd": 1000,
        "payer_account": "0123456789",
        **kwargs,
    }
    with pytest.raises(InvalidRequestError):
        DebitRequest(**values)  # type: ignore[arg-type]


def test_refund_needs_an_original() -> None:
    with pytest.raises(InvalidRequestError, match="original"):
        RefundRequest("rf-1", 1000, "reason")
    RefundRequest("rf-1", 1000, "reason", original_bank_ref="FT1")


def test_fault_defaults_and_parameters() -> None:
    spec = parse_fault({"mode": "timeout_after_debit", "seconds": 2, "hang_seconds": 1.5})
    assert (spec.mode, spec.probability, spec.seconds, spec.params) == (
        FaultMode.TIMEOUT_AFTER_DEBIT,
        1.0,
        2,
        {"hang_seconds": 1.5},
    )
    assert parse_fault({"mode": "http_500"}).params == {"after_debit": False}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("latency", "invalid_fault"),
        ({"mode": "nope"}, "unknown_fault_mode"),
        ({"mode": "latency", "probability": float("nan")}, "invalid_fault"),
        ({"mode": "latency", "probability": True}, "invalid_fault"),
        ({"mode": "statement_extra_lines", "count": 2.5}, "invalid_fault"),
        ({"mode": "flap", "period_seconds": 0}, "invalid_fault"),
        ({"mode": "duplicate_debit", "extra": 1}, "invalid_fault"),
    ],
)
def test_bad_fault_specs(body: object, code: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(body)
    assert caught.value.code == code


def test_flap_is_reproducible_and_follows_the_probability() -> None:
    pattern = [flap_down(7, 0.0, 1.0, 0.5, t + 0.5) for t in range(200)]
    assert pattern == [flap_down(7, 0.0, 1.0, 0.5, t + 0.5) for t in range(200)]
    assert 40 < sum(pattern) < 160
    assert not any(flap_down(7, 0.0, 1.0, 0.0, t) for t in range(50))
    assert all(flap_down(7, 0.0, 1.0, 1.0, t) for t in range(50))
