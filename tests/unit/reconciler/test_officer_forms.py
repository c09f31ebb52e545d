"""The dispute form's checks: the citizen's contact and the body sent to
the disputes API."""

from __future__ import annotations

import pytest

from ledger.core.errors import ValidationError
from reconciler.console.officer import citizen_contact, dispute_body


@pytest.mark.parametrize(
    ("phone", "email", "contact"),
    [
        ("0912 345 678", "", "0912345678"),
        ("+84 912.345.678", "", "+84912345678"),
        ("(024) 3825-1234", "", "02438251234"),
        ("", "an@example.vn", "an@example.vn"),
        ("0912345678", " an@example.vn ", "0912345678 / an@example.vn"),
    ],
)
def test_a_contact_is_kept_normalised(phone: str, email: str, contact: str) -> None:
    assert citizen_contact(phone, email) == contact


@pytest.mark.parametrize(
    ("phone", "email", "field"),
    [
        ("12345", "", "phone"),
        ("0912abc678", "", "phone"),
        ("09123456789012", "", "phone"),
        ("", "an@", "email"),
        ("", "an example@x.vn", "email"),
        ("", "an@localhost", "email"),
        ("", "a" * 250 + "@x.vn", "email"),
        ("", "", "contact"),
        ("  ", "  ", "contact"),
    ],
)
def test_a_bad_contact_names_its_field(phone: str, email: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        citizen_contact(phone, email)
    assert caught.value.field == field


def test_the_body_has_vietnam_time_whole_dong_and_the_contact() -> None:
    form = {
        "decision_number": "01234/QĐ-XPHC",
        "bank": "vcb",
        "amount_vnd": "1.500.000",
        "occurred_at": "2025-03-01 09:30",
        "bank_ref": " FT123 ",
        "phone": "0912345678",
        "description": "debited twice",
    }
    body = dispute_body(form, "Contact")
    assert body == {
        "decision_number": "01234/QĐ-XPHC",
        "bank": "vcb",
        "amount_vnd": 1_500_000,
        "occurred_at": "2025-03-01T09:30:00+07:00",
        "description": "debited twice\nContact: 0912345678",
        "bank_ref": "FT123",
    }
    assert dispute_body({**form, "amount_vnd": "1,5"}, "C")["amount_vnd"] == "1,5"
    with pytest.raises(ValidationError) as caught:
        dispute_body({**form, "occurred_at": "01/03/2025 09:30"}, "C")
    assert caught.value.field == "occurred_at"
