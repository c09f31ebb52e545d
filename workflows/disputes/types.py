"""Inputs and outputs of the DisputeWorkflow and its activities, and the
``decision`` signal every approval-waiting workflow receives: one dataclass
each, plain values only (they cross the Temporal boundary as JSON; recorded
histories carry these names)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from workflows.payment.types import ExternalDebitInput

DECISION_SIGNAL: Final = "decision"


class Resolution(StrEnum):
    """How a dispute's resolution ended (``DisputeOutcome.outcome`` of the
    workflow's result; a step's own outcome may also be a payment status)."""

    CONFIRMED = "confirmed"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


class ConfirmMode(StrEnum):
    """How to confirm a disputed debit (``ConfirmPlan.mode``)."""

    EXTERNAL = "external"  # book it through the ExternalDebit saga
    EXISTING = "existing"  # the ledger already books it
    WAIT_LIVE = "wait_live"  # a payment of the fine at that bank is being verified
    FAILED = "failed"  # cannot be confirmed (``reason`` says why)


@dataclass(frozen=True)
class ApprovalDecision:
    """The ``decision`` signal: a wake-up call. Receivers re-read the
    approval from the database, which alone says what was decided."""

    approval_id: int
    approved: bool
    decided_by: str
    reason: str = ""


@dataclass(frozen=True)
class DisputeWorkflowInput:
    dispute_id: int
    approval_id: int
    action: str  # "confirm" | "refund"
    timeout_seconds: float
    reminder_interval_seconds: float
    reminders_max: int


@dataclass(frozen=True)
class DisputeRef:
    dispute_id: int
    approval_id: int


@dataclass(frozen=True)
class ApprovalState:
    """An approval as the database has it, and a newer open request of the
    same dispute if one was made meanwhile."""

    status: str
    next_approval_id: int | None = None
    next_action: str | None = None


@dataclass(frozen=True)
class ReminderInput:
    dispute_id: int
    approval_id: int
    number: int
    waiting_seconds: int


@dataclass(frozen=True)
class ConfirmPlan:
    """How to confirm a disputed debit (see ``ConfirmMode``)."""

    mode: ConfirmMode
    payment_id: str | None = None
    external: ExternalDebitInput | None = None
    reason: str = ""


@dataclass(frozen=True)
class PaymentWait:
    dispute_id: int
    approval_id: int
    payment_id: str


@dataclass(frozen=True)
class FailInput:
    dispute_id: int
    approval_id: int
    reason: str


@dataclass(frozen=True)
class DisputeOutcome:
    dispute_id: int
    approval_id: int
    outcome: str
    detail: str = ""
    payment_id: str | None = None
    receipt_series: str | None = None
    receipt_number: int | None = None
