"""Payments in the books: creation, the state machine with its history,
settlement, refunds and the in-doubt views.

Callers use this package's names (``from ledger import payments as pay``);
the modules behind it are an arrangement by concern that may change:

- ``model``: statuses, transitions, channels, the ``Payment`` row, its keys;
- ``records``: reading a payment, its history rows, its audit entries;
- ``create``: starting a payment, with the API's idempotency;
- ``transitions``: the moves that book no money;
- ``settle``: settlement (with the receipt; one payment or a batch) and the
  refund of a duplicate;
- ``external``: debits the bank made outside a live payment of ours;
- ``views``: a payment with its history, the payments in doubt;
- ``bank_events``: the bank's own word held in the ledger (verified
  webhooks, fetched statement lines), which a signalled outcome needs.
"""

from domain.outcomes import SettleOutcome
from ledger.payments.bank_events import BankEvent, bank_said, record_bank_event
from ledger.payments.create import create_payment
from ledger.payments.external import AmountMismatchError, record_external_debit
from ledger.payments.model import (
    DRIVEN_CHANNELS,
    LIVE_STATUSES,
    TRANSITIONS,
    UNKNOWN_PAYER,
    ClientKey,
    Payment,
    PaymentChannel,
    PaymentStatus,
    debit_key_for,
    request_hash,
)
from ledger.payments.records import find_payment_by_debit_key, get_payment, note_event
from ledger.payments.settle import (
    SETTLE_MANY_MAX,
    BatchSettlement,
    Confirmed,
    Settlement,
    mark_refunded,
    settle_many_with_receipts,
    settle_payment,
    settle_with_receipt,
)
from ledger.payments.transitions import transition
from ledger.payments.views import (
    InDoubt,
    PaymentEvent,
    PaymentView,
    in_doubt_summary,
    next_live_payment,
    payment_view,
    payments_in_doubt,
)

__all__ = [
    "DRIVEN_CHANNELS",
    "LIVE_STATUSES",
    "SETTLE_MANY_MAX",
    "TRANSITIONS",
    "UNKNOWN_PAYER",
    "AmountMismatchError",
    "BankEvent",
    "BatchSettlement",
    "ClientKey",
    "Confirmed",
    "InDoubt",
    "Payment",
    "PaymentChannel",
    "PaymentEvent",
    "PaymentStatus",
    "PaymentView",
    "SettleOutcome",
    "Settlement",
    "bank_said",
    "create_payment",
    "debit_key_for",
    "find_payment_by_debit_key",
    "get_payment",
    "in_doubt_summary",
    "mark_refunded",
    "next_live_payment",
    "note_event",
    "payment_view",
    "payments_in_doubt",
    "record_bank_event",
    "record_external_debit",
    "request_hash",
    "settle_many_with_receipts",
    "settle_payment",
    "settle_with_receipt",
    "transition",
]
