"""Which errors stop a workflow step at once (``workflows.interceptors``):
those whose class says retrying cannot help, subclasses included; every
other failure is retried within the step's policy."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from temporalio.exceptions import ApplicationError

from bank_adapters.types import (
    BankUnavailableError,
    InvalidRequestError,
    StatementFormat,
    StatementNotAvailableError,
    StatementParseError,
)
from ledger.core.errors import ConflictError, InvalidTransitionError, NotFoundError
from ledger.payments import AmountMismatchError
from ledger.receipts.issue import ReceiptNotAllowed
from workflows.interceptors import retrying_cannot_help
from workflows.payment.activities import RefundNotConfirmedError
from workflows.reconciliation.activities import UnknownBankError

STOP: list[BaseException] = [
    InvalidTransitionError("x"),
    # Not named anywhere: it inherits the flag of InvalidTransitionError.
    AmountMismatchError("debit of 500000 does not match fine of 800000"),
    NotFoundError("x"),
    ReceiptNotAllowed(UUID(int=1), "payment is declined, not succeeded"),
    InvalidRequestError("x"),
    StatementParseError(StatementFormat.CSV, "line 1", "bad"),
    StatementNotAvailableError("hnbank", date(2026, 11, 23)),
    UnknownBankError("x"),
    ApplicationError("x", non_retryable=True),
]
RETRY: list[BaseException] = [
    # "a booked payment changed during the statement load; retry"
    ConflictError("x"),
    BankUnavailableError("hnbank", "timeout", link_down=False),
    RefundNotConfirmedError("x"),
    ApplicationError("x"),
    OSError("connection reset"),
]


@pytest.mark.parametrize("err", STOP, ids=lambda e: type(e).__name__)
def test_an_error_that_says_so_stops_the_step(err: BaseException) -> None:
    assert retrying_cannot_help(err)


@pytest.mark.parametrize("err", RETRY, ids=lambda e: type(e).__name__)
def test_any_other_error_is_retried(err: BaseException) -> None:
    assert not retrying_cannot_help(err)
