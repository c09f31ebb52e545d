"""The dispute form's checks: the citizen's contact and the body sent to
the disputes API."""

from __future__ import annotations

import pytest

from ledger.core.errors import ValidationError
from reconciler.console.officer import citizen_contact, dispute_body


@pytest.mark.parametrize(
    ("phone", "email", "contact"),
    [
        ("0912 345 678", "", ("0912345678", None)),
        ("+84 912.345.678", "", ("+84912345678", None)),
        ("(024) 3825-1234", "", ("02438251234", None)),
        ("", "an@example.vn", (None, "an@example.vn")),
        ("0912345678", " an@example.vn ", ("0912345678", "an@example.vn")),
    ],
)
def test_a_contact_is_kept_normalised(
    phone: str, email: str, contact: tuple[str | None, str | None]
) -> None:
    assert citizen_contact(phone, email) == contact


@pytest.mark.parametrize(
    ("phone", "email", "field"),
    [
        ("12345", "", "phone"),
        ("0912abc678", "", "phone"),
        ("09123456789012", "", "phone"),
        ("0 9 1 2 3 4 5 6 7 8 9 0", "", "phone"),
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


def test_the_body_has_vietnam_time_whole_dong_and_the_contact_apart() -> None:
    form = {
        "decision_number": "01234/QĐ-XPHC",
        "bank": "vcb",
        "amount_vnd": "1.500.000",
        "occurred_at": "2025-03-01 09:30",
        "bank_ref": " FT123 ",
        "phone": "0912345678",
        "description": "debited twice",
    }
    body = dispute_body(form, "untold")
    assert body == {
        "decision_number": "01234/QĐ-XPHC",
        "bank": "vcb",
        "amount_vnd": 1_500_000,
        "occurred_at": "2025-03-01T09:30:00+07:00",
        "description": "debited twice",
        "contact_phone": "0912345678",
        "bank_ref": "FT123",
    }
    # No description written: the default; an email only: no phone key.
    quiet = dispute_body({**form, "description": " ", "phone": "", "email": "an@x.vn"}, "untold")
    assert quiet["description"] == "untold"
    assert (quiet["contact_email"], "contact_phone" in quiet) == ("an@x.vn", False)
    assert dispute_body({**form, "amount_vnd": "1,5"}, "C")["amount_vnd"] == "1,5"
    with pytest.raises(ValidationError) as caught:
        dispute_body({**form, "occurred_at": "01/03/2025 09:30"}, "C")
    assert caught.value.field == "occurred_at"
