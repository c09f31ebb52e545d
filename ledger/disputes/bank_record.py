"""The bank's own record of a disputed debit, and what was last gathered
from the bank about a dispute.

Confirming or refunding a debit the ledger never booked moves money with
the amount, reference and payer account *as the bank reports them* (a line
of a statement the bank gave us: one the ledger already holds, or one the
dispute's workflow fetches), never as staff typed them. A typed amount that
differs is refused, naming both; with no record of the bank's, nothing
moves.

``dispute_evidence`` keeps what was last gathered from the bank (status
checks of the fine's payments, the debit's record): the dispute's page
reads it and never calls the bank itself. Functions run in the caller's
transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.formats import is_account
from ledger.core import tables as t
from ledger.core.errors import ConflictError
from ledger.disputes.record import Dispute

NOTE_CHARS_MAX: Final = 1_000


@dataclass(frozen=True)
class DebitRecord:
    """A debit as the bank reports it."""

    bank: str
    bank_ref: str
    amount_vnd: int
    payer_account: str | None  # None: the bank names no account
    booked_at: datetime
    source: str  # where the bank said it

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "booked_at": self.booked_at.isoformat()}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> DebitRecord:
        return cls(
            bank=str(value["bank"]),
            bank_ref=str(value["bank_ref"]),
            amount_vnd=int(value["amount_vnd"]),
            payer_account=value.get("payer_account"),
            booked_at=datetime.fromisoformat(str(value["booked_at"])),
            source=str(value["source"]),
        )


def debit_record(
    bank: str, bank_ref: str, amount_vnd: int, counterparty: str, booked_at: datetime, source: str
) -> DebitRecord:
    """A record from a statement line (its counterparty is the payer's
    account when it is one)."""
    payer = counterparty if is_account(counterparty) else None
    return DebitRecord(bank, bank_ref, amount_vnd, payer, booked_at, source)


_BANK_LINE: Final = text(
    """
    SELECT l.id, l.amount_vnd, l.counterparty, l.booked_at, l.statement_date
      FROM statement_lines l
     WHERE l.bank = :bank AND l.bank_ref = :ref AND NOT l.uploaded AND l.direction = 'credit'
    """
)


async def ledger_debit_record(
    conn: AsyncConnection, bank: str, bank_ref: str
) -> DebitRecord | None:
    """The debit as a statement the bank gave us has it (never an uploaded
    file's line), if the ledger holds that statement."""
    row = (await conn.execute(_BANK_LINE, {"bank": bank, "ref": bank_ref})).one_or_none()
    if row is None:
        return None
    source = f"the bank's statement of {row.statement_date} (line {row.id})"
    return debit_record(
        bank, bank_ref, int(row.amount_vnd), row.counterparty, row.booked_at, source
    )


async def known_debit_record(
    conn: AsyncConnection, dispute: Dispute, bank_ref: str
) -> DebitRecord | None:
    """What the ledger knows of the bank's record of the debit: a statement
    line of the bank's, or what the dispute's workflow last fetched."""
    found = await ledger_debit_record(conn, dispute.bank, bank_ref)
    if found is not None:
        return found
    stored = await stored_evidence(conn, dispute.id)
    if stored is not None and stored.debit is not None and stored.debit.bank_ref == bank_ref:
        return stored.debit
    return None


class BankAmountDiffersError(ConflictError):
    """The amount typed for a debit is not the bank's (HTTP 409)."""

    code = "bank_amount_differs"
    non_retryable = True


def check_amount(dispute: Dispute, record: DebitRecord) -> None:
    """A typed amount that is not the bank's is refused, naming both."""
    if record.amount_vnd != dispute.amount_vnd:
        raise BankAmountDiffersError(
            f"dispute {dispute.id} says {dispute.amount_vnd} đồng but the bank's record of "
            f"{record.bank} debit {record.bank_ref} ({record.source}) says "
            f"{record.amount_vnd} đồng: nothing moves on another amount than the bank's"
        )


# --- what was gathered from the bank ------------------------------------------


@dataclass(frozen=True)
class StoredEvidence:
    gathered_at: datetime
    gathered_by: str
    bank_reachable: bool | None
    bank_note: str
    checks: list[dict[str, Any]]
    debit: DebitRecord | None


_e: Final = t.dispute_evidence


async def store_evidence(
    conn: AsyncConnection,
    dispute_id: int,
    *,
    gathered_by: str,
    now: datetime,
    bank_reachable: bool | None,
    bank_note: str,
    checks: list[dict[str, Any]],
) -> None:
    """Keep what was just asked of the bank (the debit's record, found by the
    workflow, is kept as it is)."""
    values = {
        "gathered_at": now,
        "gathered_by": gathered_by[:200],
        "bank_reachable": bank_reachable,
        "bank_note": bank_note[:NOTE_CHARS_MAX],
        "checks": checks,
    }
    await conn.execute(
        insert(_e)
        .values(dispute_id=dispute_id, **values)
        .on_conflict_do_update(index_elements=[_e.c.dispute_id], set_=values)
    )


async def store_debit_record(
    conn: AsyncConnection, dispute_id: int, record: DebitRecord, gathered_by: str, now: datetime
) -> None:
    """Keep the bank's record of the disputed debit (found by the workflow)."""
    debit = record.to_json()
    note = f"the bank's record of debit {record.bank_ref}: {record.source}"
    await conn.execute(
        insert(_e)
        .values(
            dispute_id=dispute_id,
            gathered_at=now,
            gathered_by=gathered_by,
            bank_note=note[:NOTE_CHARS_MAX],
            checks=[],
            debit=debit,
        )
        .on_conflict_do_update(index_elements=[_e.c.dispute_id], set_={"debit": debit})
    )


async def stored_evidence(conn: AsyncConnection, dispute_id: int) -> StoredEvidence | None:
    row = (await conn.execute(select(_e).where(_e.c.dispute_id == dispute_id))).one_or_none()
    if row is None:
        return None
    return StoredEvidence(
        gathered_at=row.gathered_at,
        gathered_by=row.gathered_by,
        bank_reachable=row.bank_reachable,
        bank_note=row.bank_note,
        checks=list(row.checks),
        debit=DebitRecord.from_json(row.debit) if row.debit is not None else None,
    )
