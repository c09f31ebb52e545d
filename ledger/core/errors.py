"""Typed operating errors of the ledger; the API maps them to HTTP at its edge."""

from __future__ import annotations

from typing import ClassVar


class LedgerError(Exception):
    """Base of every ledger error. ``code`` is stable and machine-readable."""

    code = "ledger_error"
    # True where retrying cannot change the outcome (a person must look):
    # a workflow step raising it stops at once (the worker's interceptor).
    non_retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(LedgerError):
    """Bad input: names the field and what was wrong."""

    code = "invalid_input"
    non_retryable = True

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFoundError(LedgerError):
    code = "not_found"
    non_retryable = True


class ConflictError(LedgerError):
    code = "conflict"


class IdempotencyConflictError(ConflictError):
    """The same idempotency key was used with different content."""

    code = "idempotency_conflict"


class UnbalancedEntryError(LedgerError):
    code = "unbalanced_entry"


class UnknownAccountError(LedgerError):
    code = "unknown_account"


class FineAlreadyPaidError(ConflictError):
    code = "fine_already_paid"


class InvalidTransitionError(LedgerError):
    """A payment state change the state machine does not allow (a bug or a
    bank answer that contradicts an earlier one: needs a human)."""

    code = "invalid_transition"
    non_retryable = True
