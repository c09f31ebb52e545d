"""Typed operating errors of the ledger; the API maps them to HTTP at its edge
(``reconciler.api.errors``: invalid input 400, not allowed 403, not found
404, a reused idempotency key 422, other conflicts 409, anything else 500)."""

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


class ForbiddenError(LedgerError):
    """Whoever asks may not do this, whatever they send: the requester of an
    approval deciding it, a service account requesting one (HTTP 403)."""

    code = "forbidden"
    non_retryable = True


class NotFoundError(LedgerError):
    """The thing named (a fine, a payment, a dispute...) does not exist."""

    code = "not_found"
    non_retryable = True


class ConflictError(LedgerError):
    """The request is well formed but the books' current state refuses it."""

    code = "conflict"


class IdempotencyConflictError(ConflictError):
    """The same idempotency key was used with different content."""

    code = "idempotency_conflict"


class UnbalancedEntryError(LedgerError):
    """A journal entry whose postings do not sum to zero, or are too few,
    too many or not whole đồng: a programmer's error, never posted."""

    code = "unbalanced_entry"


class UnknownAccountError(LedgerError):
    """A posting names an account the ledger does not have (a bank's
    clearing account is created at start-up, for the configured banks)."""

    code = "unknown_account"


class FineAlreadyPaidError(ConflictError):
    """A new payment for a fine another payment already settled."""

    code = "fine_already_paid"


class InvalidTransitionError(LedgerError):
    """A payment state change the state machine does not allow (a bug or a
    bank answer that contradicts an earlier one: needs a human)."""

    code = "invalid_transition"
    non_retryable = True
