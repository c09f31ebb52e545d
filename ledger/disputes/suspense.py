"""Disputed debits and the suspense account: refunding a debit no payment
books (held in suspense first, as reconciliation does with money nobody
identified), and releasing suspense once a confirmed debit is booked by its
payment. Idempotent by journal entry keys; in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.keys import suspense_key
from ledger.core import tables as t
from ledger.core.postings import (
    EntryRequest,
    Posting,
    SystemAccount,
    bank_clearing_account,
    post_entry,
    reverse_entry,
)
from ledger.disputes.record import Dispute, audit_dispute

_SUSPENSE_ENTRY: Final = (
    select(t.journal_entries.c.id, t.postings.c.amount_vnd)
    .join(t.postings, t.postings.c.entry_id == t.journal_entries.c.id)
    .join(
        t.accounts,
        (t.accounts.c.id == t.postings.c.account_id) & (t.accounts.c.code == bindparam("clearing")),
    )
    .where(t.journal_entries.c.idempotency_key == bindparam("key"))
)


async def _suspense_entry(
    conn: AsyncConnection, bank: str, bank_ref: str
) -> tuple[int, int] | None:
    """(entry id, amount in clearing) of the debit's suspense entry, if any."""
    params = {"key": suspense_key(bank, bank_ref), "clearing": bank_clearing_account(bank)}
    row = (await conn.execute(_SUSPENSE_ENTRY, params)).one_or_none()
    return (int(row.id), int(row.amount_vnd)) if row is not None else None


async def book_unrecorded_refund(
    conn: AsyncConnection,
    dispute: Dispute,
    refund_ref: str,
    now: datetime,
    actor: str,
    *,
    amount_vnd: int,
) -> None:
    """Book the refund of a bank debit no payment books: the debit is held in
    suspense (as reconciliation does with money nobody identified; if it did
    already, that entry is reused), and the refund takes it out of suspense.
    Idempotent (entry keys)."""
    assert dispute.bank_ref is not None
    clearing = bank_clearing_account(dispute.bank)
    suspense = SystemAccount.SUSPENSE
    amount = amount_vnd  # the bank's record's (``bank_record``)
    meta = {"bank": dispute.bank, "bank_ref": dispute.bank_ref, "dispute_id": dispute.id}
    await post_entry(
        conn,
        EntryRequest(
            idempotency_key=suspense_key(dispute.bank, dispute.bank_ref),
            kind="suspense",
            description=f"disputed debit {dispute.bank_ref} (dispute {dispute.id})",
            postings=(Posting(clearing, amount), Posting(suspense, -amount)),
            metadata=meta,
        ),
    )
    refund = await post_entry(
        conn,
        EntryRequest(
            idempotency_key=f"dispute:{dispute.id}:refund",
            kind="refund",
            description=f"refund of disputed debit {dispute.bank_ref} (dispute {dispute.id})",
            postings=(Posting(suspense, amount), Posting(clearing, -amount)),
            metadata={**meta, "refund_ref": refund_ref},
        ),
    )
    if refund.created:
        detail = {
            "bank": dispute.bank,
            "bank_ref": dispute.bank_ref,
            "refund_ref": refund_ref,
            "amount_vnd": amount,
        }
        await audit_dispute(conn, dispute.id, "refund_booked", actor, now, detail)


async def release_suspense(
    conn: AsyncConnection, dispute: Dispute, now: datetime, actor: str
) -> bool:
    """The confirmed debit is now booked by its payment: if reconciliation
    had put it in suspense meanwhile, reverse that entry (once)."""
    if dispute.bank_ref is None:
        return False
    held = await _suspense_entry(conn, dispute.bank, dispute.bank_ref)
    if held is None:
        return False
    released = await reverse_entry(
        conn,
        held[0],
        f"suspense-release:{dispute.bank}:{dispute.bank_ref}",
        f"disputed debit {dispute.bank_ref} booked by its payment (dispute {dispute.id})",
    )
    if released.created:
        detail = {"bank": dispute.bank, "bank_ref": dispute.bank_ref, "amount_vnd": held[1]}
        await audit_dispute(conn, dispute.id, "suspense_released", actor, now, detail)
    return released.created
