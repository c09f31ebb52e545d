"""Evidence for a dispute: what the ledger holds, plus what the bank says.

The bank's side is gathered on purpose, never by reading a dispute: when it
is opened, on request (``POST /api/v1/disputes/{id}/evidence/refresh``) and
by its workflow (the bank's record of the debit, ``find_bank_debit``); it is
kept in the ledger (``dispute_evidence``), and a dispute's page reads only
that (``stored_evidence``), so it answers while every bank is down.

Gathering is a live status check of each of the fine's payments at its
bank, each bounded in time. A bank that is down or slow is reported as such
("unreachable", "no answer within N s"); it never makes the evidence fail,
because finance needs the ledger's part most when the bank link is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from bank_adapters.base import BankAdapter
from bank_adapters.types import Direction, StatementNotAvailableError
from domain.business_time import business_date
from ledger import disputes as ds
from ledger import payments as pay
from workflows.payment.activities import to_outcome
from workflows.payment.types import OutcomeKind

CHECKS_MAX: Final = 10
TIMEOUT: Final = "timeout"
NOT_ASKED: Final = "not_asked"
NOT_CONFIGURED: Final = "not_configured"
_UNREACHABLE: Final = (OutcomeKind.LINK_DOWN, TIMEOUT)
# The statements searched for a debit: the complaint's business day first.
STATEMENT_DAYS: Final = (0, -1, 1)


@dataclass(frozen=True)
class BankCheck:
    """One live ``get_status`` of a payment's debit key at its bank."""

    payment_id: str
    bank: str
    debit_key: str
    outcome: str  # a BankOutcome kind, or timeout / not_asked / not_configured
    bank_ref: str | None
    detail: str


@dataclass(frozen=True)
class Evidence:
    ledger: ds.LedgerEvidence
    bank_checks: tuple[BankCheck, ...]
    bank_reachable: bool | None  # None: nothing was asked of the dispute's bank
    bank_note: str
    # When the bank's side was gathered (None: never), and the bank's own
    # record of the disputed debit, if one was found.
    gathered_at: datetime | None = None
    debit: ds.DebitRecord | None = None


async def _check(
    adapters: Mapping[str, BankAdapter], payment: pay.Payment, timeout_seconds: float
) -> BankCheck:
    def result(outcome: str, detail: str, bank_ref: str | None = None) -> BankCheck:
        return BankCheck(
            str(payment.id), payment.bank, payment.debit_key, outcome, bank_ref, detail
        )

    if payment.channel not in pay.DRIVEN_CHANNELS:
        return result(NOT_ASKED, "recorded from the bank's own reference: no key of ours to ask")
    adapter = adapters.get(payment.bank)
    if adapter is None:
        return result(NOT_CONFIGURED, f"bank {payment.bank} is not configured here")
    try:
        answer = await asyncio.wait_for(adapter.get_status(payment.debit_key), timeout_seconds)
    except TimeoutError:
        return result(TIMEOUT, f"the bank did not answer within {timeout_seconds:g} s")
    outcome = to_outcome(answer)
    detail = {
        OutcomeKind.LINK_DOWN: "the bank cannot be reached (link down)",
        OutcomeKind.NOT_FOUND: "the bank has no debit under this key",
    }.get(outcome.kind, outcome.reason[:300])
    return result(outcome.kind, detail, outcome.bank_ref)


async def _health(adapter: BankAdapter | None, timeout_seconds: float) -> tuple[bool | None, str]:
    """No payment to ask about: say at least whether the bank answers."""
    if adapter is None:
        return None, "the bank is not configured here"
    try:
        health = await asyncio.wait_for(adapter.health(), timeout_seconds)
    except TimeoutError:
        return False, f"the bank did not answer within {timeout_seconds:g} s"
    if not health.up:
        return False, f"the bank is unreachable now: {health.detail[:200]}"
    return True, "the bank answers (no payment of ours to ask it about)"


async def gather_evidence(
    engine: AsyncEngine,
    adapters: Mapping[str, BankAdapter],
    dispute_id: int,
    timeout_seconds: float,
    *,
    gathered_by: str,
    now: datetime,
) -> tuple[ds.Dispute, Evidence]:
    """Ask the bank now and keep its answers: the ledger's evidence (one
    read), a live status check of up to ``CHECKS_MAX`` payments, outside any
    transaction and concurrently, then stored for the dispute's page."""
    dispute, evidence = await _ask_bank(engine, adapters, dispute_id, timeout_seconds)
    checks = [asdict(check) for check in evidence.bank_checks]
    async with engine.begin() as conn:
        await ds.store_evidence(
            conn,
            dispute_id,
            gathered_by=gathered_by,
            now=now,
            bank_reachable=evidence.bank_reachable,
            bank_note=evidence.bank_note,
            checks=checks,
        )
        stored = await ds.stored_evidence(conn, dispute_id)
    debit = stored.debit if stored is not None else None
    return dispute, replace(evidence, gathered_at=now, debit=debit)


async def stored_evidence(engine: AsyncEngine, dispute_id: int) -> tuple[ds.Dispute, Evidence]:
    """The dispute with the ledger's evidence and the bank's side as last
    gathered: reads the ledger only, never a bank."""
    async with engine.connect() as conn:
        dispute = await ds.get_dispute(conn, dispute_id)
        ledger = await ds.ledger_evidence(conn, dispute)
        stored = await ds.stored_evidence(conn, dispute_id)
    if stored is None:
        return dispute, Evidence(ledger, (), None, "nothing was asked of the bank yet")
    checks = tuple(BankCheck(**check) for check in stored.checks)
    return dispute, Evidence(
        ledger,
        checks,
        stored.bank_reachable,
        stored.bank_note,
        gathered_at=stored.gathered_at,
        debit=stored.debit,
    )


async def find_bank_debit(
    engine: AsyncEngine,
    adapter: BankAdapter,
    dispute: ds.Dispute,
    bank_ref: str,
    now: datetime,
) -> ds.DebitRecord | None:
    """The bank's own record of a debit the ledger never booked: a statement
    line of the bank's the ledger holds, else the line of a statement fetched
    now from the bank, for the complaint's day and the days either side (a
    debit is booked on the statement of its own business day). Raises the
    adapter's ``BankUnavailableError`` when the bank does not answer."""
    async with engine.connect() as conn:
        found = await ds.ledger_debit_record(conn, dispute.bank, bank_ref)
    if found is not None:
        return found
    occurred, today = business_date(dispute.occurred_at), business_date(now)
    for offset in STATEMENT_DAYS:
        day = occurred + timedelta(days=offset)
        if day > today:
            continue
        try:
            statement = await adapter.fetch_statement(day)
        except StatementNotAvailableError:
            continue
        for line in statement.lines:
            if line.bank_ref == bank_ref and line.direction == Direction.CREDIT:
                source = f"the bank's statement of {day}, fetched at {now:%Y-%m-%d %H:%M} UTC"
                return ds.debit_record(
                    dispute.bank,
                    bank_ref,
                    line.amount_vnd,
                    line.counterparty,
                    line.booked_at,
                    source,
                )
    return None


async def _ask_bank(
    engine: AsyncEngine,
    adapters: Mapping[str, BankAdapter],
    dispute_id: int,
    timeout_seconds: float,
) -> tuple[ds.Dispute, Evidence]:
    async with engine.connect() as conn:
        dispute = await ds.get_dispute(conn, dispute_id)
        ledger = await ds.ledger_evidence(conn, dispute)
    payments = [view.payment for view in ledger.payments][-CHECKS_MAX:]
    checks = tuple(await asyncio.gather(*(_check(adapters, p, timeout_seconds) for p in payments)))
    asked = [
        c for c in checks if c.bank == dispute.bank and c.outcome not in (NOT_ASKED, NOT_CONFIGURED)
    ]
    if not asked:
        reachable, note = await _health(adapters.get(dispute.bank), timeout_seconds)
        return dispute, Evidence(ledger, checks, reachable, note)
    down = [c for c in asked if c.outcome in _UNREACHABLE]
    if down:
        note = f"bank {dispute.bank} is unreachable now: {down[0].detail}"
        return dispute, Evidence(ledger, checks, False, note)
    return dispute, Evidence(ledger, checks, True, f"bank {dispute.bank} answered")
