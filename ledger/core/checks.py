"""Checks of what people send (API bodies, query parameters, a reason typed
by finance): each failure is a ``ValidationError`` that names the field and
says what would be right."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Final

from ledger.core.errors import ValidationError

REASON_CHARS_MAX: Final = 2_000


def check_object(body: object, known: Collection[str]) -> dict[str, Any]:
    """A JSON object with no field but the ``known`` ones (the first unknown
    one, in sorted order, is named)."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ValidationError(unknown[0], "is not a known field")
    return body


def check_amount(field: str, value: object, max_amount_vnd: int) -> int:
    """A whole number of đồng in ``1..max_amount_vnd``, sent as a JSON integer."""
    # bool is an int subclass; a float or a string is refused even if whole.
    if type(value) is not int:
        raise ValidationError(field, "must be a whole number of đồng as a JSON integer")
    if not 1 <= value <= max_amount_vnd:
        raise ValidationError(field, f"must be in 1..{max_amount_vnd}")
    return value


def check_choice(field: str, value: object, choices: Iterable[str]) -> str:
    """One of ``choices`` (listed in the error in their order)."""
    allowed = tuple(choices)
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(allowed)}")
    return value


def check_limit(limit: int, limit_max: int) -> int:
    if not 1 <= limit <= limit_max:
        raise ValidationError("limit", f"must be in 1..{limit_max}")
    return limit


def check_reason(field: str, reason: object, *, required: bool) -> str:
    """A human's free-text reason: bounded, printable (newlines allowed)."""
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise ValidationError(field, "must be a string")
    reason = reason.strip()
    if required and not reason:
        raise ValidationError(field, "is required: say why")
    if len(reason) > REASON_CHARS_MAX:
        raise ValidationError(field, f"is longer than {REASON_CHARS_MAX} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in reason):
        raise ValidationError(field, "contains control characters")
    return reason
