"""Disputes: a citizen's complaint ("my account was debited, I have no
receipt"), the evidence the ledger holds about it, and its maker-checker
resolution. Every step is in the audit log (subject ``dispute``), which is
also the dispute's history.

Callers use this package's names (``from ledger import disputes as ds``);
the modules behind it are an arrangement by concern that may change:

- ``input``: the API body of a complaint, checked;
- ``record``: statuses and actions, the ``Dispute`` row, open, reject, list,
  history;
- ``resolution``: confirm or refund with a second person's approval, and
  the outcome of carrying it out (the lifecycle is drawn there);
- ``suspense``: refunding a debit no payment books, releasing suspense;
- ``evidence``: what the ledger knows about the complaint;
- ``retention``: the citizen's contact erased a while after the dispute
  ends;
- ``bank_record``: the bank's own record of the debit (amounts and accounts
  come from it, never from what was typed), and what was last gathered
  from the bank.
"""

from ledger.disputes.bank_record import (
    BankAmountDiffersError,
    DebitRecord,
    StoredEvidence,
    check_amount,
    debit_record,
    ledger_debit_record,
    store_debit_record,
    store_evidence,
    stored_evidence,
)
from ledger.disputes.evidence import (
    LedgerEvidence,
    StatementLineEvidence,
    ledger_evidence,
    payment_for_debit,
)
from ledger.disputes.input import DisputeInput
from ledger.disputes.record import (
    ACTIONS,
    DISPUTE_STATUSES,
    FINAL_STATUSES,
    Dispute,
    DisputeAction,
    DisputeStateError,
    DisputeStatus,
    get_dispute,
    history,
    list_disputes,
    open_dispute,
    refund_key_for,
    reject_dispute,
    workflow_id_for,
)
from ledger.disputes.resolution import (
    complete,
    decide_approval,
    expire_approval,
    fail,
    request_resolution,
)
from ledger.disputes.retention import erase_contacts_once, erase_expired_contacts
from ledger.disputes.suspense import book_unrecorded_refund, release_suspense

__all__ = [
    "ACTIONS",
    "DISPUTE_STATUSES",
    "FINAL_STATUSES",
    "BankAmountDiffersError",
    "DebitRecord",
    "Dispute",
    "DisputeAction",
    "DisputeInput",
    "DisputeStateError",
    "DisputeStatus",
    "LedgerEvidence",
    "StatementLineEvidence",
    "StoredEvidence",
    "book_unrecorded_refund",
    "check_amount",
    "complete",
    "debit_record",
    "decide_approval",
    "erase_contacts_once",
    "erase_expired_contacts",
    "expire_approval",
    "fail",
    "get_dispute",
    "history",
    "ledger_debit_record",
    "ledger_evidence",
    "list_disputes",
    "open_dispute",
    "payment_for_debit",
    "refund_key_for",
    "reject_dispute",
    "release_suspense",
    "request_resolution",
    "store_debit_record",
    "store_evidence",
    "stored_evidence",
    "workflow_id_for",
]
