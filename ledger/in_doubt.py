"""The operators' in-doubt queue: each payment whose outcome is not known
yet, oldest first, with how long it has been in doubt, how many times the
saga asked the bank for its status, and the bank's last answer.

What it reads: the payment's ``payment_events``. ``payment.check_status``
notes each status check there (``detail.step = "status_check"``, the
bank's ``outcome`` and its words); the debit's send and resends note their
``outcome`` too, so the last answer is the latest event holding one.
Read-only; one bounded query per page (the partial index
``payments_in_doubt`` finds the payments, ``payment_events_payment`` their
events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

IN_DOUBT_LIMIT_MAX: Final = 500
STATUS_CHECK_STEP: Final = "status_check"


@dataclass(frozen=True)
class InDoubtItem:
    payment_id: UUID
    decision_number: str
    issuing_unit: str
    bank: str
    amount_vnd: int
    status: str
    created_at: datetime
    # When it entered verifying (None: still initiated, its debit not answered).
    verifying_since: datetime | None
    attempts: int
    last_answer_at: datetime | None
    last_answer: str | None
    last_answer_detail: str | None


def _sql(*, bank: bool, units: bool, after: bool) -> Any:
    where = ["p.status IN ('initiated', 'verifying')"]
    if bank:
        where.append("p.bank = :bank")
    if units:
        where.append("f.issuing_unit IN :units")
    if after:
        where.append("(p.created_at, p.id) > (:after_at, :after_id)")
    statement = text(
        f"""
        SELECT p.id, f.decision_number, f.issuing_unit, p.bank, p.amount_vnd, p.status,
               p.created_at, v.since, a.attempts, l.at AS answered_at,
               l.detail->>'outcome' AS answer, l.detail->>'detail' AS answer_detail
          FROM payments p JOIN fines f ON f.id = p.fine_id
          LEFT JOIN LATERAL (SELECT min(e.at) AS since FROM payment_events e
                              WHERE e.payment_id = p.id AND e.to_status = 'verifying') v ON true
          LEFT JOIN LATERAL (SELECT count(*) AS attempts FROM payment_events e
                              WHERE e.payment_id = p.id
                                AND e.detail->>'step' = '{STATUS_CHECK_STEP}') a ON true
          LEFT JOIN LATERAL (SELECT e.at, e.detail FROM payment_events e
                              WHERE e.payment_id = p.id AND e.detail ? 'outcome'
                              ORDER BY e.id DESC LIMIT 1) l ON true
         WHERE {" AND ".join(where)}
         ORDER BY p.created_at, p.id
         LIMIT :limit
        """  # noqa: S608 - only fixed fragments are joined; values are bound
    )
    return statement.bindparams(bindparam("units", expanding=True)) if units else statement


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC)


async def list_in_doubt(
    conn: AsyncConnection,
    *,
    bank: str | None,
    units: Sequence[str],
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[InDoubtItem]:
    """The payments in doubt, oldest first, after ``after`` ((created_at, id)
    of the previous page's last row), at most ``limit``; only the issuing
    units in ``units`` when it is not empty."""
    assert 1 <= limit <= IN_DOUBT_LIMIT_MAX, limit
    params: dict[str, Any] = {"limit": limit}
    if bank is not None:
        params["bank"] = bank
    if units:
        params["units"] = list(units)
    if after is not None:
        params["after_at"], params["after_id"] = after
    statement = _sql(bank=bank is not None, units=bool(units), after=after is not None)
    rows = (await conn.execute(statement, params)).all()
    return [
        InDoubtItem(
            payment_id=row.id,
            decision_number=row.decision_number,
            issuing_unit=row.issuing_unit,
            bank=row.bank,
            amount_vnd=int(row.amount_vnd),
            status=row.status,
            created_at=row.created_at.astimezone(UTC),
            verifying_since=_utc(row.since),
            attempts=int(row.attempts),
            last_answer_at=_utc(row.answered_at),
            last_answer=row.answer,
            last_answer_detail=row.answer_detail,
        )
        for row in rows
    ]
