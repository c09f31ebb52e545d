"""A complaint as the API receives it: ``DisputeInput.from_json`` checks the
body and names the field of every problem. Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from domain.business_time import DATE_MAX, DATE_MIN
from domain.contact import (
    EMAIL_CHARS_MAX,
    PHONE_CHARS_MAX,
    ContactError,
    normal_email,
    normal_phone,
)
from domain.formats import ACCOUNT_LENGTH_MAX, ACCOUNT_RE, BANK_REF_RE
from ledger.core.checks import check_amount, check_object, check_reason
from ledger.core.errors import ValidationError
from ledger.fines import normalise_decision_number

DESCRIPTION_CHARS_MAX: Final = 2_000
OCCURRED_FUTURE_SLACK: Final = timedelta(minutes=10)
_TIME_CHARS_MAX: Final = 64
_FIELDS: Final = frozenset(
    {
        "decision_number",
        "bank",
        "amount_vnd",
        "occurred_at",
        "bank_ref",
        "description",
        "payer_account",
        "contact_phone",
        "contact_email",
    }
)
# Per contact field: its longest raw string, its normal form, its hint.
_CONTACT_FIELDS: Final[dict[str, tuple[int, Callable[[str], str], str]]] = {
    "contact_phone": (
        PHONE_CHARS_MAX,
        normal_phone,
        "must be a Vietnamese phone number: +84 or 0, then 8-10 digits",
    ),
    "contact_email": (EMAIL_CHARS_MAX, normal_email, "must be an email address (name@domain.vn)"),
}


def _optional_match(body: dict[str, Any], name: str, pattern: re.Pattern[str], hint: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise ValidationError(name, hint)
    return value.strip()


def _optional_contact(body: dict[str, Any], name: str) -> str | None:
    """The citizen's phone or email in its normal form; absent, null or
    blank: None."""
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    longest, normal, hint = _CONTACT_FIELDS[name]
    if not isinstance(value, str):
        raise ValidationError(name, hint)
    if len(value) > longest:
        raise ValidationError(name, f"is over {longest} characters")
    try:
        return normal(value)
    except ContactError:
        raise ValidationError(name, hint) from None


def parse_time(value: object, field: str, now: datetime) -> datetime:
    """An ISO 8601 time with its zone, not in the future (but for clock
    skew), as UTC."""
    if not isinstance(value, str) or len(value) > _TIME_CHARS_MAX:
        raise ValidationError(field, "must be an ISO 8601 time with a timezone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, "must be an ISO 8601 time with a timezone") from None
    if moment.tzinfo is None:
        raise ValidationError(field, "needs a timezone, e.g. 2026-03-01T09:30:00+07:00")
    if not DATE_MIN <= moment.date() <= DATE_MAX:
        raise ValidationError(field, f"must be between {DATE_MIN} and {DATE_MAX}")
    moment = moment.astimezone(UTC)
    if moment > now + OCCURRED_FUTURE_SLACK:
        raise ValidationError(field, "is in the future")
    return moment


@dataclass(frozen=True)
class DisputeInput:
    decision_number: str
    bank: str
    amount_vnd: int
    occurred_at: datetime
    description: str
    bank_ref: str | None = None
    payer_account: str | None = None
    # The citizen's, to reach them; never copied into the audit log.
    contact_phone: str | None = None
    contact_email: str | None = None

    @property
    def contact_given(self) -> list[str]:
        """Which kinds of contact were given: what the audit row says."""
        kinds = (("phone", self.contact_phone), ("email", self.contact_email))
        return [kind for kind, value in kinds if value is not None]

    @classmethod
    def from_json(
        cls, body: object, banks: list[str], max_amount_vnd: int, now: datetime
    ) -> DisputeInput:
        """Validate an API body; every problem names its field."""
        body = check_object(body, _FIELDS)
        number = body.get("decision_number")
        if not isinstance(number, str):
            raise ValidationError("decision_number", "is required (e.g. 01234/QĐ-XPHC)")
        normalise_decision_number(number)
        bank = body.get("bank")
        if not isinstance(bank, str) or bank not in banks:
            raise ValidationError("bank", f"must be one of: {', '.join(sorted(banks)) or '-'}")
        description = check_reason("description", body.get("description"), required=True)
        if len(description) > DESCRIPTION_CHARS_MAX:
            raise ValidationError("description", f"is over {DESCRIPTION_CHARS_MAX} characters")
        return cls(
            decision_number=number.strip(),
            bank=bank,
            amount_vnd=check_amount("amount_vnd", body.get("amount_vnd"), max_amount_vnd),
            occurred_at=parse_time(body.get("occurred_at"), "occurred_at", now),
            description=description,
            bank_ref=_optional_match(body, "bank_ref", BANK_REF_RE, "must be the bank's reference"),
            payer_account=_optional_match(
                body,
                "payer_account",
                ACCOUNT_RE,
                f"must be 1-{ACCOUNT_LENGTH_MAX} letters or digits",
            ),
            contact_phone=_optional_contact(body, "contact_phone"),
            contact_email=_optional_contact(body, "contact_email"),
        )
