"""Inputs and outputs of the reconciliation workflow and its activities: one
dataclass each, plain values only (they cross the Temporal boundary as JSON,
and recorded histories carry their names)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActPhase(StrEnum):
    """The saga steps of a run, in order (``ledger.reconciliation.followup``
    selects the lines of each by the same words)."""

    HEAL = "heal"  # lines that pay a fine
    DUPLICATE = "duplicate"  # second payments of a fine, once it is paid


class ActionOutcome(StrEnum):
    """How a discrepancy's approved-or-not action ended."""

    REFUNDED = "refunded"
    MATCHED = "matched"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass(frozen=True)
class ReconciliationInput:
    """Reconcile one bank's statement of one Vietnam business date.

    ``statement_date`` (``YYYY-MM-DD``) is set by the API and the CLI; a
    schedule leaves it empty and the workflow takes today (Vietnam time) plus
    ``day_offset_days`` when it starts. ``reconciliation_id`` is the run row
    the API or CLI created (an upload has its file attached to it); a
    schedule's run creates its own."""

    bank: str
    statement_date: str | None = None
    day_offset_days: int = 0
    reconciliation_id: int | None = None
    trigger: str = "schedule"


@dataclass(frozen=True)
class BeginInput:
    bank: str
    statement_date: str
    reconciliation_id: int | None
    trigger: str


@dataclass(frozen=True)
class RunRef:
    reconciliation_id: int
    bank: str
    statement_date: str


@dataclass(frozen=True)
class LoadResult:
    import_id: int
    lines_in_file: int
    new_lines: int
    matched: int = 0
    healed: int = 0
    duplicates: int = 0
    amount_mismatches: int = 0
    unknown: int = 0
    discrepancies_opened: int = 0
    already_loaded: bool = False
    unconfirmed: int = 0


@dataclass(frozen=True)
class ActInput:
    bank: str
    phase: ActPhase
    batch: int


@dataclass(frozen=True)
class ActResult:
    done: int
    failed: int
    # Steps of this phase not done yet (duplicates wait for their fine).
    remaining: int


@dataclass(frozen=True)
class FailInput:
    reconciliation_id: int
    error: str


@dataclass(frozen=True)
class ReconciliationResult:
    reconciliation_id: int
    status: str
    bank: str = ""
    statement_date: str = ""
    lines: int = 0
    new_lines: int = 0
    matched: int = 0
    healed: int = 0
    duplicates: int = 0
    amount_mismatches: int = 0
    unknown: int = 0
    missing_at_bank: int = 0
    in_doubt_too_long: int = 0
    discrepancies: int = 0
    discrepancies_open: int = 0
    actions_pending: int = 0
    error: str | None = None
    # Uploaded lines waiting for the bank's word (``ledger.reconciliation.claims``).
    unconfirmed: int = 0


@dataclass(frozen=True)
class DiscrepancyActionInput:
    """Carry out a discrepancy's refund or manual match once a second person
    approves it (or give up when nobody decides in time)."""

    discrepancy_id: int
    approval_id: int
    action: str  # "refund" | "manual_match"
    timeout_seconds: float


@dataclass(frozen=True)
class ApprovalRef:
    discrepancy_id: int
    approval_id: int


@dataclass(frozen=True)
class ApprovalStatus:
    status: str


@dataclass(frozen=True)
class DiscrepancyActionResult:
    discrepancy_id: int
    approval_id: int
    outcome: ActionOutcome
    detail: str = ""
