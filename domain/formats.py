"""Formats of the identifiers that cross our boundaries: bank accounts, bank
references, idempotency keys and bank ids. Each has one pattern here, with a
POSIX form for the SQL checks that mirror it."""

from __future__ import annotations

import re
from typing import Final, TypeGuard

# IBAN / BBAN upper bound; Vietnamese account numbers are 6-19 digits.
ACCOUNT_LENGTH_MAX: Final = 34
ACCOUNT_RE: Final = re.compile(rf"[A-Za-z0-9]{{1,{ACCOUNT_LENGTH_MAX}}}", re.ASCII)
# The same rule as a PostgreSQL regular expression (``~``), anchored.
ACCOUNT_SQL_REGEX: Final = rf"^[A-Za-z0-9]{{1,{ACCOUNT_LENGTH_MAX}}}$"

# Keys travel in HTTP headers, URL paths and camt.053 EndToEndId; a closed
# alphabet keeps them safe in all of them without escaping.
IDEMPOTENCY_KEY_LENGTH_MAX: Final = 100
IDEMPOTENCY_KEY_RE: Final = re.compile(
    rf"[A-Za-z0-9._:\-]{{1,{IDEMPOTENCY_KEY_LENGTH_MAX}}}", re.ASCII
)
# A bank's own reference for a movement: the same closed alphabet.
BANK_REF_LENGTH_MAX: Final = 100
BANK_REF_RE: Final = re.compile(rf"[A-Za-z0-9._:\-]{{1,{BANK_REF_LENGTH_MAX}}}", re.ASCII)
# A receipt series: an issuing unit's code and the year, "DCSGTS1CAQHK-2025".
RECEIPT_SERIES_RE: Final = re.compile(r"[A-Z0-9-]{1,40}", re.ASCII)
# Our name for a bank (configuration, metric labels, URL paths).
BANK_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}", re.ASCII)


def is_account(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and ACCOUNT_RE.fullmatch(value) is not None


def is_bank_ref(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and BANK_REF_RE.fullmatch(value) is not None
