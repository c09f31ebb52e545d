"""Inputs and outputs of every workflow and activity: one dataclass each.

These cross the Temporal boundary (serialised to JSON), so they hold plain
values only (str, int, bool, None); names are stable because recorded
histories carry them.
"""

# No ``from __future__ import annotations`` here: the data converter reads
# these dataclasses' field types (``typing.get_type_hints``) for every value
# it converts, and string annotations make it compile and evaluate each one
# every time (≈ 40 µs per dataclass, several per saga step).
from dataclasses import dataclass, field
from enum import StrEnum

from domain.outcomes import SettleOutcome


class OutcomeKind(StrEnum):
    """What a bank answered, flattened for the wire (``BankOutcome.kind``)."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    PENDING = "pending"
    OUTCOME_UNKNOWN = "outcome_unknown"
    LINK_DOWN = "link_down"
    NOT_FOUND = "not_found"
    # ...or the payment was already final in the ledger (a replayed step, or
    # booked meanwhile by another path; ``bank_ref`` is then the one it was
    # booked with):
    ALREADY_FINAL = "already_final"


@dataclass(frozen=True)
class BankOutcome:
    kind: OutcomeKind
    bank_ref: str | None = None
    reason: str = ""
    payment_status: str = ""
    # A decline's party (``bank_adapters.types.Declined.party``).
    party: str = ""


@dataclass(frozen=True)
class VerifyPolicy:
    """How a payment is resolved when the bank has not said yes or no.

    Polling backs off from ``poll_interval_seconds_initial`` to
    ``poll_interval_seconds_max``; it never stops while the outcome is
    unknown. A payment the bank provably never received (link down on the
    first send) is resent for ``link_down_window_seconds``, then declined.
    """

    poll_interval_seconds_initial: float = 2.0
    poll_interval_seconds_max: float = 60.0
    link_down_window_seconds: float = 120.0
    link_down_retry_seconds: float = 5.0
    in_doubt_alert_seconds: float = 1800.0
    polls_before_continue_as_new: int = 500


@dataclass(frozen=True)
class FinePaymentInput:
    decision_key: str
    payment_id: str
    policy: VerifyPolicy = field(default_factory=VerifyPolicy)
    # Set when continuing as new in the middle of verification.
    verifying_since: str | None = None
    in_doubt_alert_raised: bool = False


@dataclass(frozen=True)
class FinePaymentResult:
    """What became of one payment: FinePayment's result, and ExternalDebit's
    for the payment it recorded."""

    payment_id: str
    status: str
    receipt_series: str | None = None
    receipt_number: int | None = None
    refunded: bool = False


@dataclass(frozen=True)
class BankUpdate:
    """A bank's word on a payment, from a verified webhook."""

    payment_id: str
    kind: OutcomeKind
    bank_ref: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class SignalledOutcome:
    """A success or decline that reached a payment's workflow by signal:
    settled on only if the ledger holds the bank's word for it, else the
    bank is asked (``payment.confirm_update``)."""

    payment_id: str
    kind: OutcomeKind
    bank_ref: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class SendDebitInput:
    payment_id: str
    resend: bool = False
    # While verifying, a LinkDown must not move the payment anywhere.
    verifying: bool = False


@dataclass(frozen=True)
class PaymentRef:
    """A payment, by id: the ``payment_requested`` signal, and the argument
    or answer of steps about one payment."""

    payment_id: str


@dataclass(frozen=True)
class StatusCheckInput:
    payment_id: str
    # The prober reported the bank's link back since the last check: confirm
    # it from the worker before asking (see ``PaymentActivities``).
    after_link_recovery: bool = False


@dataclass(frozen=True)
class DeclineInput:
    payment_id: str
    reason: str
    # Whose doing (``observability.metrics.PAYMENT_REASONS``); a decline
    # after the link stayed down is the bank's.
    party: str = "bank"


@dataclass(frozen=True)
class SettleInput:
    payment_id: str
    bank_ref: str
    cause: str


@dataclass(frozen=True)
class SettledWithReceipt:
    """``payment.settle_with_receipt``: the settlement, and the receipt when
    the payment settles its fine (``SettleOutcome.SETTLED``)."""

    outcome: SettleOutcome
    receipt_series: str | None = None
    receipt_number: int | None = None


@dataclass(frozen=True)
class RefundResult:
    done: bool
    outcome: BankOutcome


@dataclass(frozen=True)
class NextPayment:
    payment_id: str | None


@dataclass(frozen=True)
class PaymentRoute:
    """The bank a payment is paid through: its bank calls run on that
    bank's task queue (``workflows.common.bank_queue``)."""

    bank: str


@dataclass(frozen=True)
class InDoubtAlertInput:
    payment_id: str
    verifying_for_seconds: int


@dataclass(frozen=True)
class ExternalDebitInput:
    """A debit the bank made that no live payment of ours is waiting for: a
    late webhook, a duplicate, or a statement line (reconciliation)."""

    bank: str
    bank_ref: str
    decision_key: str
    amount_vnd: int
    payer_account: str
    cause: str
    debit_key: str | None = None


@dataclass(frozen=True)
class Done:
    """The answer of an activity that only does something."""

    changed: bool = True


@dataclass(frozen=True)
class DoubleDebitInput:
    """A second booking the bank reported for one of our payments."""

    payment_id: str
    bank_ref: str


@dataclass(frozen=True)
class BankRef:
    """A bank, by id: the link recovery's input and its pass's argument."""

    bank: str


@dataclass
class RecoveryReport:
    """What one pass of the link recovery (or, summed, a run) did."""

    bank: str
    in_doubt: int = 0  # payments in doubt when the pass began
    checked: int = 0  # status checks the bank answered
    settled: int = 0  # confirmed debits booked and receipted in bulk
    duplicates: int = 0  # confirmed debits of already paid fines (left to refund)
    left_to_workflows: int = 0  # declined, unknown to the bank, or no answer
    woken: int = 0  # payment workflows signalled afterwards
    passes: int = 0

    def add(self, other: "RecoveryReport") -> None:
        self.in_doubt += other.in_doubt
        self.checked += other.checked
        self.settled += other.settled
        self.duplicates += other.duplicates
        self.left_to_workflows += other.left_to_workflows
        self.woken += other.woken
        self.passes += other.passes
