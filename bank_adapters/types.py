"""The shared vocabulary of every bank adapter: requests, results, statement
lines and errors.

Result types. Every bank answer, whatever its protocol, is mapped to exactly
one of these (the adapters use an exhaustive ``match`` on the bank's own
status enum, so a new bank status fails type checking, not silently):

==================  ===============================================  =============
result              meaning                                          money moved?
==================  ===============================================  =============
``Succeeded``       the bank booked it; ``bank_ref`` is its id       yes
``Declined``        the bank refused it (funds, account, request)    no
``Pending``         accepted, not final yet                          not yet/maybe
``OutcomeUnknown``  may have reached the bank: read timeout after    maybe
                    sending, lost response, 5xx, malformed answer
``LinkDown``        provably never sent: connection refused, DNS,    no
                    connect timeout, circuit breaker open
==================  ===============================================  =============

Only ``LinkDown`` and ``Declined`` may be read as "no money moved".
``get_status`` can also answer ``NotFound``: the bank has no debit with that
key (so sending it again with the same key is safe: the bank deduplicates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Final, TypeAlias

import aiohttp

from domain.business_time import VIETNAM_TZ
from domain.decision_numbers import DECISION_NUMBER_LENGTH_MAX
from domain.formats import (
    ACCOUNT_LENGTH_MAX,
    ACCOUNT_RE,
    IDEMPOTENCY_KEY_LENGTH_MAX,
    IDEMPOTENCY_KEY_RE,
)
from domain.money import AMOUNT_VND_MAX

TEXT_LENGTH_MAX: Final = 500


class InvalidRequestError(ValueError):
    """A request built with values no bank could accept (a caller's bug or
    unvalidated input); raised before anything is sent."""

    # Retrying cannot help: a workflow step raising it stops at once.
    non_retryable: ClassVar[bool] = True


def _check_key(name: str, value: str) -> None:
    if not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InvalidRequestError(
            f"{name} must be 1-{IDEMPOTENCY_KEY_LENGTH_MAX} characters of "
            f"A-Z a-z 0-9 . _ : -, got {value!r:.120}"
        )


def _check_amount(name: str, value: int) -> None:
    # bool is an int subclass; True đồng is a bug, not an amount.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be an int number of đồng, got {value!r:.40}")
    if not 0 < value <= AMOUNT_VND_MAX:
        raise InvalidRequestError(f"{name} must be in 1..{AMOUNT_VND_MAX}, got {value}")


def _check_account(name: str, value: str) -> None:
    if not ACCOUNT_RE.fullmatch(value):
        raise InvalidRequestError(
            f"{name} must be 1-{ACCOUNT_LENGTH_MAX} letters or digits, got {value!r:.60}"
        )


def _check_text(name: str, value: str, length_max: int) -> None:
    if len(value) > length_max or any(ord(c) < 32 for c in value):
        raise InvalidRequestError(
            f"{name} must be at most {length_max} characters without control characters"
        )


# --- requests -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DebitRequest:
    """Debit ``amount_vnd`` from the payer for one fine decision.

    ``idempotency_key`` is ours: the same key always names the same debit,
    so sending the request again (after ``OutcomeUnknown`` / ``LinkDown``)
    never debits twice.
    """

    idempotency_key: str
    decision_number: str
    amount_vnd: int
    payer_account: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_key("idempotency_key", self.idempotency_key)
        if not self.decision_number.strip():
            raise InvalidRequestError("decision_number must not be empty")
        _check_text("decision_number", self.decision_number, DECISION_NUMBER_LENGTH_MAX)
        _check_amount("amount_vnd", self.amount_vnd)
        _check_account("payer_account", self.payer_account)
        _check_text("description", self.description, TEXT_LENGTH_MAX)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """Give back ``amount_vnd`` of an earlier debit, under its own key.

    ``original_idempotency_key`` names the debit by our key; ``original_bank_ref``
    by the bank's (needed for a debit the service never initiated, found in a
    statement). ``payee_account`` is required by banks that refund by
    transfer (VietQR); account-debit banks know it from the original debit.
    """

    idempotency_key: str
    amount_vnd: int
    reason: str
    original_idempotency_key: str | None = None
    original_bank_ref: str | None = None
    payee_account: str | None = None

    def __post_init__(self) -> None:
        _check_key("idempotency_key", self.idempotency_key)
        _check_amount("amount_vnd", self.amount_vnd)
        _check_text("reason", self.reason, TEXT_LENGTH_MAX)
        if self.original_idempotency_key is None and self.original_bank_ref is None:
            raise InvalidRequestError(
                "a refund needs original_idempotency_key or original_bank_ref"
            )
        if self.original_idempotency_key is not None:
            _check_key("original_idempotency_key", self.original_idempotency_key)
        if self.original_bank_ref is not None:
            _check_key("original_bank_ref", self.original_bank_ref)
        if self.payee_account is not None:
            _check_account("payee_account", self.payee_account)


# --- results ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Succeeded:
    bank_ref: str


@dataclass(frozen=True, slots=True)
class Declined:
    """The bank said no: nothing was debited. ``party`` says whose doing it
    is, for the payment SLO (``observability.metrics.PAYMENT_REASONS``):
    ``citizen`` (the payer's own account), ``bank``, or ``ours`` (the bank
    refused a request we sent)."""

    reason: str
    code: str = ""
    party: str = "bank"


@dataclass(frozen=True, slots=True)
class Pending:
    bank_ref: str | None = None


@dataclass(frozen=True, slots=True)
class OutcomeUnknown:
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LinkDown:
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NotFound:
    """Only from ``get_status``: the bank does not know this key."""

    detail: str = ""


BankResult: TypeAlias = Succeeded | Declined | Pending | OutcomeUnknown | LinkDown
StatusResult: TypeAlias = BankResult | NotFound


@dataclass(frozen=True, slots=True)
class HealthStatus:
    up: bool
    detail: str
    latency_seconds: float


# --- statements ---------------------------------------------------------------


class Direction(StrEnum):
    """Seen from our account: ``credit`` is money in (a fine paid),
    ``debit`` money out (a refund)."""

    CREDIT = "credit"
    DEBIT = "debit"


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One booked entry of a bank statement, whatever the file format.

    ``booked_at`` is timezone-aware UTC. Formats that carry only a date
    (MT940) give the start of that Vietnam business day. ``raw`` is the text
    of the entry as it was in the file (bounded), for finance to look at.
    ``end_to_end_ref`` is our idempotency key when the format carries it
    (camt.053 EndToEndId). ``source_line`` is the 1-based line in the file.
    """

    bank_ref: str
    booked_at: datetime
    amount_vnd: int
    direction: Direction
    counterparty: str
    content: str
    raw: str = field(compare=False)
    end_to_end_ref: str | None = None
    source_line: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        assert self.booked_at.tzinfo is not None, "booked_at must be timezone-aware"
        assert self.booked_at.utcoffset() == timedelta(0), "booked_at must be UTC"
        assert 0 < self.amount_vnd <= AMOUNT_VND_MAX, self.amount_vnd

    @property
    def booking_date(self) -> date:
        """The Vietnam business date of the booking."""
        return self.booked_at.astimezone(VIETNAM_TZ).date()


class StatementFormat(StrEnum):
    CAMT053 = "camt053"
    MT940 = "mt940"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    """Everything a parser took from one file. Balances are ``None`` when the
    format has none (CSV); when present they were checked against the lines."""

    format: StatementFormat
    account: str
    lines: tuple[StatementLine, ...]
    opening_balance_vnd: int | None = None
    closing_balance_vnd: int | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement fetched from a bank for one Vietnam business date."""

    bank_id: str
    statement_date: date
    parsed: ParsedStatement

    @property
    def lines(self) -> tuple[StatementLine, ...]:
        return self.parsed.lines


# --- errors -------------------------------------------------------------------


class BankAdapterError(Exception):
    """Base of the operating errors raised by read operations
    (``fetch_statement``). Money operations never raise these: they return
    a result."""

    # True where retrying cannot help (see ``InvalidRequestError``).
    non_retryable: ClassVar[bool] = False


class BankUnavailableError(BankAdapterError):
    """The bank could not be reached or did not answer. ``link_down`` is True
    when the request was provably never sent."""

    def __init__(self, bank_id: str, detail: str, *, link_down: bool) -> None:
        super().__init__(f"bank {bank_id!r} unavailable: {detail}")
        self.bank_id = bank_id
        self.detail = detail
        self.link_down = link_down


class BankProtocolError(BankAdapterError):
    """The bank answered something the protocol does not allow."""

    non_retryable = True

    def __init__(self, bank_id: str, detail: str) -> None:
        super().__init__(f"bank {bank_id!r} answered outside its protocol: {detail}")
        self.bank_id = bank_id
        self.detail = detail


class StatementParseError(BankAdapterError):
    """A statement file is invalid; nothing from it may be imported.

    ``where`` names the line or element (``"line 12"``, ``"Ntry #3 (line 40)"``)
    and ``reason`` says what is wrong with it.
    """

    non_retryable = True

    def __init__(self, fmt: StatementFormat, where: str, reason: str) -> None:
        super().__init__(f"{fmt.value} statement: {where}: {reason}")
        self.format = fmt
        self.where = where
        self.reason = reason


class StatementNotAvailableError(BankAdapterError):
    """The bank has no statement for that date (yet)."""

    non_retryable = True

    def __init__(self, bank_id: str, statement_date: date) -> None:
        super().__init__(f"bank {bank_id!r} has no statement for {statement_date.isoformat()}")
        self.bank_id = bank_id
        self.statement_date = statement_date


# What a call to a bank may raise for the bank's or the link's sake: the
# adapters' own errors, and the transport's (aiohttp, the socket, a timeout)
# should an adapter let one through. A caller that goes on past one bank
# call's trouble catches these, never ``Exception``: anything else is a bug,
# and caught per call it would be logged once per payment instead of failing.
BANK_CALL_ERRORS: Final = (BankAdapterError, aiohttp.ClientError, OSError, TimeoutError)
