"""Keys derived from business ids: the same business fact always gives the
same key, which is what makes every money movement idempotent.

Some keys are also computed inside set-based SQL (reconciliation books a
million lines in one statement); the ``*_sql`` functions give that SQL from
this one definition, and ``tests/integration/ledger/test_domain_sql.py``
checks that PostgreSQL computes the same key as Python for any input.
"""

from __future__ import annotations

import re
from typing import Final

# ``payments.debit_key`` column width.
DEBIT_KEY_LENGTH_MAX: Final = 200
SUSPENSE_ACCOUNT: Final = "suspense"
# What the ``*_sql`` functions accept as operands: a bind parameter or a
# (qualified) column, never text that came from outside.
_SQL_OPERAND: Final = re.compile(r":[a-z_][a-z0-9_]*|[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")


def _operands(*sql: str) -> None:
    for operand in sql:
        assert _SQL_OPERAND.fullmatch(operand), f"not a bind parameter or column: {operand!r}"


def external_debit_key(bank: str, bank_ref: str) -> str:
    """The debit key of a payment booked for a debit the bank made without
    us asking (a late webhook, a duplicate, a statement line)."""
    return f"ext-{bank}-{bank_ref}"[:DEBIT_KEY_LENGTH_MAX]


def external_debit_key_sql(bank: str, bank_ref: str) -> str:
    """``external_debit_key`` as a SQL expression over two SQL expressions
    (bind parameters or columns, never text from outside)."""
    _operands(bank, bank_ref)
    return f"left('ext-' || {bank} || '-' || {bank_ref}, {DEBIT_KEY_LENGTH_MAX})"


def suspense_key(bank: str, bank_ref: str) -> str:
    """The journal entry that holds a bank's credit nobody identified."""
    return f"suspense:{bank}:{bank_ref}"


def suspense_key_sql(bank: str, bank_ref: str) -> str:
    """``suspense_key`` as a SQL expression (see ``external_debit_key_sql``)."""
    _operands(bank, bank_ref)
    return f"'suspense:' || {bank} || ':' || {bank_ref}"
