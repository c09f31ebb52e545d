"""A citizen's contact on a dispute: a Vietnamese phone number, an email, or
both. Kept in fields of their own, never in a free text that the audit log
copies for good (``ledger.disputes``).

* A phone number as people write it: ``+84`` or ``0``, then 8 to 10 digits;
  spaces, dots, dashes and brackets between them are dropped
  (``"(024) 3825-1234"`` → ``"02438251234"``).
* An email: enough to catch a typo, not a full RFC 5322 parser: one ``@``,
  no spaces, a dot in the domain, at most 254 characters (RFC 5321).

Pure: ``ContactError`` names the field (``phone`` or ``email``); each layer
says it in its own words.
"""

from __future__ import annotations

import re
from typing import Final

PHONE_CHARS_MAX: Final = 20
EMAIL_CHARS_MAX: Final = 254
_PHONE_RE: Final = re.compile(r"(?:\+84|0)[0-9]{8,10}", re.ASCII)
_PHONE_SEPARATORS: Final = re.compile(r"[ .\-()]")
_EMAIL_RE: Final = re.compile(r"[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+")
# What the database's checks hold (migration 0017), the normal forms only.
PHONE_STORED_PATTERN: Final = r"^\+?[0-9]{9,12}$"


class ContactError(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: not a valid {field}")
        self.field = field


def normal_phone(text: str) -> str:
    """``text`` as digits (with ``+84`` kept); ``ContactError('phone')``."""
    written = text.strip()
    digits = _PHONE_SEPARATORS.sub("", written)
    if len(written) > PHONE_CHARS_MAX or not _PHONE_RE.fullmatch(digits):
        raise ContactError("phone")
    return digits


def normal_email(text: str) -> str:
    """``text`` without surrounding spaces; ``ContactError('email')``."""
    address = text.strip()
    if len(address) > EMAIL_CHARS_MAX or not _EMAIL_RE.fullmatch(address):
        raise ContactError("email")
    return address
