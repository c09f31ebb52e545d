"""What a payment is: its statuses and the moves the state machine allows,
the channels it comes through, the ``Payment`` row (with its fine's decision
number) and the keys derived from it. Pure values, no I/O.

State machine::

    initiated ─┬─> verifying ─┬─> succeeded ──> refunded   (duplicates only)
               │              └─> declined
               ├─> succeeded
               └─> declined

The statuses and channels are also spelled in SQL (migration 0002's CHECK
constraints and partial indexes, the tuned statements of this package);
``tests/integration/ledger/test_closed_sets_sql.py`` checks they agree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from ledger.core import tables as t
from ledger.core.rows import columns, row_mapper


class PaymentStatus(StrEnum):
    INITIATED = "initiated"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    REFUNDED = "refunded"


class PaymentChannel(StrEnum):
    PORTAL = "portal"
    COUNTER = "counter"
    RECONCILIATION = "reconciliation"
    DISPUTE = "dispute"


# Whose outcome the bank has not told yet.
LIVE_STATUSES: Final = (PaymentStatus.INITIATED, PaymentStatus.VERIFYING)
# The channels whose payments a saga drives (one live per fine at a time);
# the others record a debit the bank already made.
DRIVEN_CHANNELS: Final = (PaymentChannel.PORTAL, PaymentChannel.COUNTER)
# The payer of a debit no record of the bank's names an account for (an
# uploaded line, a statement line without one). Never an account money is
# sent to: a refund of such a debit goes by the bank's own reference only.
UNKNOWN_PAYER: Final = "unknown"
TRANSITIONS: Final[dict[str, frozenset[PaymentStatus]]] = {
    PaymentStatus.INITIATED: frozenset(
        {PaymentStatus.VERIFYING, PaymentStatus.SUCCEEDED, PaymentStatus.DECLINED}
    ),
    PaymentStatus.VERIFYING: frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.DECLINED}),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.DECLINED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}


def debit_key_for(payment_id: UUID) -> str:
    """The idempotency key sent to the bank: derived from the payment id, so
    every resend of this payment's debit carries the same key."""
    return f"fp-{payment_id.hex}"


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


@dataclass(frozen=True)
class Payment:
    """A ``payments`` row with the decision number and unit of its fine."""

    id: UUID
    fine_id: int
    decision_number: str
    decision_key: str
    issuing_unit: str
    bank: str
    payer_account: str
    amount_vnd: int
    status: str
    debit_key: str
    settles_fine: bool
    channel: str
    bank_ref: str | None
    decline_reason: str | None
    workflow_id: str | None
    debited_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class ClientKey:
    """Who asked (token name) and their Idempotency-Key, with a request hash."""

    client_id: str
    key: str
    request_hash: str


# Selected from ``payments`` joined to ``fines`` on ``fine_id``.
PAYMENT_COLUMNS: Final = columns(
    Payment,
    t.payments,
    decision_number=t.fines.c.decision_number,
    decision_key=t.fines.c.decision_key,
    issuing_unit=t.fines.c.issuing_unit,
)
payment_from_row: Final = row_mapper(Payment)
