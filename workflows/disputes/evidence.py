"""Evidence for a dispute: what the ledger holds, plus a live status check of
each of the fine's payments at its bank, each bounded in time.

A bank that is down or slow is reported as such ("unreachable", "no answer
within N s"); it never makes the evidence fail, because finance needs the
ledger's part most when the bank link is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from bank_adapters.base import BankAdapter
from ledger import disputes as ds
from ledger import payments as pay
from workflows.payment.activities import to_outcome
from workflows.payment.types import OutcomeKind

CHECKS_MAX: Final = 10
TIMEOUT: Final = "timeout"
NOT_ASKED: Final = "not_asked"
NOT_CONFIGURED: Final = "not_configured"
_UNREACHABLE: Final = (OutcomeKind.LINK_DOWN, TIMEOUT)


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
) -> tuple[ds.Dispute, Evidence]:
    """The ledger's evidence (one read) and, outside any transaction, a live
    status check of up to ``CHECKS_MAX`` payments, concurrently."""
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
