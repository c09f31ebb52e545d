"""Activities of the DisputeWorkflow: every piece of I/O, each idempotent.

Each money step re-reads the approval from the database and refuses to act
unless it is approved there: a signal, a replay or a bug cannot move money on
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from bank_adapters.base import BankAdapter
from bank_adapters.types import BankAdapterError, BankUnavailableError, RefundRequest
from ledger import disputes as ds
from ledger import payments as pay
from ledger.core import approvals as ap
from ledger.core import outbox
from ledger.core import tables as t
from ledger.core.audit import append_audit
from ledger.fines import get_fine
from ledger.receipts.issue import get_receipt_for_payment
from workflows.disputes import types as dt
from workflows.disputes.evidence import find_bank_debit
from workflows.disputes.types import ConfirmMode, Resolution
from workflows.payment import types as wt
from workflows.payment.activities import to_outcome, utc_now
from workflows.payment.types import OutcomeKind

log = structlog.get_logger(__name__)

ACTOR: Final = "system:dispute"


class StillPendingError(Exception):
    """The bank or the payment saga has not finished yet; retried."""


@dataclass(frozen=True)
class DisputeDeps:
    engine: AsyncEngine
    adapters: Mapping[str, BankAdapter]
    clock: Callable[[], datetime] = utc_now


class DisputeActivities:
    def __init__(self, deps: DisputeDeps) -> None:
        self._engine = deps.engine
        self._adapters = deps.adapters
        self._now = deps.clock

    def _adapter(self, bank: str) -> BankAdapter:
        try:
            return self._adapters[bank]
        except KeyError:
            raise ApplicationError(f"bank {bank!r} is not configured on this worker") from None

    @staticmethod
    async def _approved(
        conn: AsyncConnection,
        ref: dt.DisputeRef,
        *,
        for_update: bool = False,
        done_ok: bool = True,
    ) -> tuple[ds.Dispute, ap.Approval]:
        """The dispute and its approval, which must be approved (or, with
        ``done_ok``, already carried out: a retried step finds its own work)."""
        dispute = await ds.get_dispute(conn, ref.dispute_id, for_update=for_update)
        approval = await ap.get_approval(conn, ref.approval_id, for_update=for_update)
        if approval.subject_type != "dispute" or approval.subject_id != str(dispute.id):
            raise ApplicationError(
                f"approval {approval.id} is not about dispute {dispute.id}", non_retryable=True
            )
        allowed = ("approved", "executed") if done_ok else ("approved",)
        if approval.status not in allowed:
            raise ApplicationError(
                f"approval {approval.id} is {approval.status}, not approved",
                type="NotApprovedError",
                non_retryable=True,
            )
        return dispute, approval

    # -- waiting for the decision ---------------------------------------------

    async def _state(self, conn: AsyncConnection, ref: dt.DisputeRef) -> dt.ApprovalState:
        approval = await ap.get_approval(conn, ref.approval_id)
        dispute = await ds.get_dispute(conn, ref.dispute_id)
        if dispute.approval_id is not None and dispute.approval_id != ref.approval_id:
            newer = await ap.get_approval(conn, dispute.approval_id)
            if newer.open:
                action = str(newer.payload.get("action", ""))
                return dt.ApprovalState(approval.status, newer.id, action)
        return dt.ApprovalState(approval.status)

    @activity.defn(name="dispute.approval_state")
    async def approval_state(self, ref: dt.DisputeRef) -> dt.ApprovalState:
        async with self._engine.connect() as conn:
            return await self._state(conn, ref)

    @activity.defn(name="dispute.expire")
    async def expire(self, ref: dt.DisputeRef) -> dt.ApprovalState:
        async with self._engine.begin() as conn:
            approval = await ds.expire_approval(conn, ref.dispute_id, ref.approval_id, self._now())
        if approval.status == "expired":
            log.warning("dispute.approval_expired", dispute_id=ref.dispute_id)
        async with self._engine.connect() as conn:
            return await self._state(conn, ref)

    @activity.defn(name="dispute.remind")
    async def remind(self, inp: dt.ReminderInput) -> dt.DisputeOutcome:
        """A reminder notice in the outbox, once per number (dedupe key)."""
        async with self._engine.begin() as conn:
            approval = await ap.get_approval(conn, inp.approval_id, for_update=True)
            if approval.status == "pending":
                inserted = await outbox.enqueue(
                    conn,
                    f"approval-reminder:{approval.id}:{inp.number}",
                    "approval_reminder",
                    {
                        "approval_id": approval.id,
                        "dispute_id": inp.dispute_id,
                        "approval_kind": approval.kind,
                        "requested_by": approval.requested_by,
                        "reminder": inp.number,
                        "waiting_seconds": inp.waiting_seconds,
                    },
                )
                if inserted:
                    await append_audit(
                        conn,
                        actor=ACTOR,
                        action="approval.reminder_sent",
                        subject_type="approval",
                        subject_id=str(approval.id),
                        now=self._now(),
                        detail={"reminder": inp.number, "waiting_seconds": inp.waiting_seconds},
                    )
        return dt.DisputeOutcome(inp.dispute_id, inp.approval_id, "reminded")

    # -- confirm ------------------------------------------------------------------

    async def _bank_record(
        self, dispute: ds.Dispute, approval: ap.Approval, bank_ref: str
    ) -> tuple[ds.DebitRecord | None, str]:
        """The bank's own record of a debit the ledger never booked, for the
        approved amount; else why not (nothing moves then). A bank that does
        not answer is asked again (the step is retried)."""
        try:
            record = await find_bank_debit(
                self._engine, self._adapter(dispute.bank), dispute, bank_ref, self._now()
            )
        except BankUnavailableError as err:
            raise StillPendingError(f"the bank's record of debit {bank_ref}: {err}") from err
        except BankAdapterError as err:
            return None, f"the bank's statement could not be read: {err}"
        if record is None:
            return None, (
                f"the bank has no record of {dispute.bank} debit {bank_ref} on its statements "
                "around the complaint's date: nothing moved"
            )
        async with self._engine.begin() as conn:
            await ds.store_debit_record(conn, dispute.id, record, ACTOR, self._now())
        approved = int(approval.payload["amount_vnd"])
        if record.amount_vnd != approved:
            return None, (
                f"the request says {approved} đồng but the bank's record of debit {bank_ref} "
                f"({record.source}) says {record.amount_vnd} đồng: nothing moved"
            )
        return record, ""

    @activity.defn(name="dispute.plan_confirm")
    async def plan_confirm(self, ref: dt.DisputeRef) -> dt.ConfirmPlan:
        async with self._engine.connect() as conn:
            dispute, approval = await self._approved(conn, ref, done_ok=False)
            bank_ref = str(approval.payload["bank_ref"])
            booked = await ds.payment_for_debit(conn, dispute.bank, bank_ref)
        record = None
        if booked is None:
            # Booked with the bank's amount and payer, whatever was typed.
            record, problem = await self._bank_record(dispute, approval, bank_ref)
            if record is None:
                return dt.ConfirmPlan(ConfirmMode.FAILED, reason=problem)
        async with self._engine.begin() as conn:
            dispute, approval = await self._approved(conn, ref, for_update=True, done_ok=False)
            existing = await ds.payment_for_debit(conn, dispute.bank, bank_ref)
            if existing is not None and existing.fine_id != dispute.fine_id:
                return dt.ConfirmPlan(
                    ConfirmMode.FAILED, reason=f"debit {bank_ref} paid another fine"
                )
            if existing is not None and existing.status != "initiated":
                return dt.ConfirmPlan(ConfirmMode.EXISTING, str(existing.id))
            live = await _live_payment_at(conn, dispute)
            if existing is None and live is not None:
                return dt.ConfirmPlan(ConfirmMode.WAIT_LIVE, str(live))
            if record is None:  # booked by the payment meanwhile, then undone
                return dt.ConfirmPlan(ConfirmMode.FAILED, reason="the debit changed; look again")
            external = wt.ExternalDebitInput(
                bank=dispute.bank,
                bank_ref=bank_ref,
                decision_key=dispute.decision_key,
                amount_vnd=record.amount_vnd,
                payer_account=record.payer_account or pay.UNKNOWN_PAYER,
                cause=f"dispute {dispute.id}: debit confirmed by finance "
                f"({approval.requested_by}, approved by {approval.decided_by}); "
                f"the bank's record: {record.source}",
            )
            payment, _ = await pay.record_external_debit(
                conn,
                await get_fine(conn, dispute.decision_key),
                external.bank,
                bank_ref,
                external.amount_vnd,
                external.payer_account,
                self._now(),
                external.cause,
                channel="dispute",
                actor=ACTOR,
            )
        return dt.ConfirmPlan(ConfirmMode.EXTERNAL, str(payment.id), external)

    @activity.defn(name="dispute.await_payment")
    async def await_payment(self, inp: dt.PaymentWait) -> dt.DisputeOutcome:
        async with self._engine.connect() as conn:
            payment = await pay.get_payment(conn, UUID(inp.payment_id))
        if payment.live:
            raise StillPendingError(f"payment {payment.id} is still {payment.status}")
        return dt.DisputeOutcome(inp.dispute_id, inp.approval_id, payment.status)

    @activity.defn(name="dispute.finish_confirm")
    async def finish_confirm(self, inp: dt.PaymentWait) -> dt.DisputeOutcome:
        """Close the dispute once the saga booked the debit: confirmed with
        its receipt, or refunded (the fine was already paid). A suspense
        entry reconciliation made for the debit meanwhile is released."""
        ref = dt.DisputeRef(inp.dispute_id, inp.approval_id)
        payment_id = UUID(inp.payment_id)
        now = self._now()
        async with self._engine.begin() as conn:
            dispute, _ = await self._approved(conn, ref, for_update=True)
            payment = await pay.get_payment(conn, payment_id)
            receipt = await get_receipt_for_payment(conn, payment_id)
            if payment.status == "declined":
                await ds.fail(conn, ref.dispute_id, ref.approval_id, "debit declined", now, ACTOR)
                return dt.DisputeOutcome(
                    ref.dispute_id,
                    ref.approval_id,
                    Resolution.FAILED,
                    "declined",
                    inp.payment_id,
                )
            if payment.status != "refunded" and not (payment.settles_fine and receipt):
                raise StillPendingError(f"payment {payment_id} is {payment.status}, not final")
            await ds.release_suspense(conn, dispute, now, ACTOR)
            result: dict[str, Any] = {"bank_ref": payment.bank_ref}
            outcome = Resolution.REFUNDED if payment.status == "refunded" else Resolution.CONFIRMED
            if receipt is not None:
                result |= {"receipt_series": receipt.series, "receipt_number": receipt.number}
            else:
                result["duplicate"] = True
            await ds.complete(
                conn, ref.dispute_id, ref.approval_id, outcome, payment_id, result, now, ACTOR
            )
        return dt.DisputeOutcome(
            ref.dispute_id,
            ref.approval_id,
            outcome,
            "" if receipt else "the fine was already paid: the debit was refunded",
            inp.payment_id,
            receipt.series if receipt else None,
            receipt.number if receipt else None,
        )

    @activity.defn(name="dispute.fail")
    async def fail(self, inp: dt.FailInput) -> dt.DisputeOutcome:
        async with self._engine.begin() as conn:
            await ds.fail(conn, inp.dispute_id, inp.approval_id, inp.reason, self._now(), ACTOR)
        log.warning("dispute.execution_failed", dispute_id=inp.dispute_id, reason=inp.reason)
        return dt.DisputeOutcome(inp.dispute_id, inp.approval_id, Resolution.FAILED, inp.reason)

    # -- refund ---------------------------------------------------------------------

    @activity.defn(name="dispute.refund")
    async def refund(self, ref: dt.DisputeRef) -> dt.DisputeOutcome:
        """Refund the disputed debit through the bank, then book it. A debit
        the ledger books (a duplicate payment) is refunded under that
        payment's own refund key, so a refund the payment saga may also be
        sending is never made twice; any other under the dispute's key."""
        async with self._engine.connect() as conn:
            dispute, approval = await self._approved(conn, ref)
            if approval.status != "approved":
                return await self._already(dispute, approval)
            bank_ref = str(approval.payload["bank_ref"])
            payment = await ds.payment_for_debit(conn, dispute.bank, bank_ref)
        record = None
        if payment is None:
            # Sent back as the bank has it: its amount, to its payer.
            record, problem = await self._bank_record(dispute, approval, bank_ref)
            if record is not None and record.payer_account is None:
                problem = f"the bank's record names no account to refund to ({record.source})"
                record = None
            if record is None:
                return await self.fail(dt.FailInput(ref.dispute_id, ref.approval_id, problem))
        if payment is not None and (
            payment.settles_fine or payment.status not in ("succeeded", "refunded")
        ):
            return await self.fail(
                dt.FailInput(
                    ref.dispute_id,
                    ref.approval_id,
                    f"payment {payment.id} is {payment.status}: not refundable",
                )
            )
        request = _refund_request(dispute, payment, record)
        if payment is None or payment.status != "refunded":
            outcome = to_outcome(await self._adapter(dispute.bank).refund(request))
            log.info("dispute.refund_sent", dispute_id=dispute.id, outcome=outcome.kind)
            if outcome.kind == OutcomeKind.DECLINED:
                return await self.fail(
                    dt.FailInput(
                        ref.dispute_id,
                        ref.approval_id,
                        f"the bank declined the refund: {outcome.reason}",
                    )
                )
            if outcome.kind != OutcomeKind.SUCCEEDED:
                raise StillPendingError(f"refund of dispute {dispute.id}: {outcome.kind}")
            refund_ref = outcome.bank_ref or request.idempotency_key
        else:
            refund_ref = request.idempotency_key
        return await self._book_refund(ref, payment, refund_ref, request.amount_vnd)

    async def _book_refund(
        self, ref: dt.DisputeRef, payment: pay.Payment | None, refund_ref: str, amount_vnd: int
    ) -> dt.DisputeOutcome:
        now = self._now()
        async with self._engine.begin() as conn:
            dispute, _ = await self._approved(conn, ref, for_update=True)
            if payment is not None:
                await pay.mark_refunded(conn, payment.id, refund_ref, now, actor=ACTOR)
            else:
                await ds.book_unrecorded_refund(
                    conn, dispute, refund_ref, now, ACTOR, amount_vnd=amount_vnd
                )
            result = {"bank_ref": dispute.bank_ref, "refund_ref": refund_ref}
            await ds.complete(
                conn,
                ref.dispute_id,
                ref.approval_id,
                Resolution.REFUNDED,
                payment.id if payment else None,
                result,
                now,
                ACTOR,
            )
        return dt.DisputeOutcome(
            ref.dispute_id,
            ref.approval_id,
            Resolution.REFUNDED,
            refund_ref,
            str(payment.id) if payment else None,
        )

    async def _already(self, dispute: ds.Dispute, approval: ap.Approval) -> dt.DisputeOutcome:
        outcome = dispute.status if approval.status == "executed" else Resolution.FAILED
        return dt.DisputeOutcome(dispute.id, approval.id, outcome, "already done")

    def all(self) -> list[Callable[..., object]]:
        return [
            self.approval_state,
            self.expire,
            self.remind,
            self.plan_confirm,
            self.await_payment,
            self.finish_confirm,
            self.fail,
            self.refund,
        ]


def _refund_request(
    dispute: ds.Dispute, payment: pay.Payment | None, record: ds.DebitRecord | None
) -> RefundRequest:
    """The refund as the bank booked the debit: a payment's own amount and
    payer, or the bank's record's; never what was typed."""
    reason = f"Hoan tien khieu nai {dispute.id} QD {dispute.decision_number}"[:120]
    if payment is not None:
        return RefundRequest(
            idempotency_key=f"rf-{payment.id.hex}",
            amount_vnd=payment.amount_vnd,
            reason=reason,
            original_idempotency_key=(
                payment.debit_key if payment.channel in pay.DRIVEN_CHANNELS else None
            ),
            original_bank_ref=payment.bank_ref,
            payee_account=payment.payer_account,
        )
    assert record is not None, "a debit the ledger never booked is refunded as the bank has it"
    return RefundRequest(
        idempotency_key=ds.refund_key_for(dispute.id),
        amount_vnd=record.amount_vnd,
        reason=reason,
        original_bank_ref=record.bank_ref,
        payee_account=record.payer_account,
    )


async def _live_payment_at(conn: AsyncConnection, dispute: ds.Dispute) -> UUID | None:
    """A payment of the fine at the dispute's bank still being verified."""
    rows = (
        (
            await conn.execute(
                select(t.payments.c.id)
                .where(
                    t.payments.c.fine_id == dispute.fine_id,
                    t.payments.c.bank == dispute.bank,
                    t.payments.c.status.in_(pay.LIVE_STATUSES),
                    t.payments.c.channel.in_(pay.DRIVEN_CHANNELS),
                )
                .limit(1)
            )
        )
        .scalars()
        .all()
    )
    return rows[0] if rows else None
