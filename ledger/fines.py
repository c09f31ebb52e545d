"""Fines registry: decision numbers, registration and lookup.

A decision number looks like ``01234/QĐ-XPHC``. It is stored as typed (the
display form) and as a normalised key, so that an officer typing
``01234/qd-xphc`` or `` 01234 / QĐ-XPHC`` finds the same fine.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import decision_numbers as dn
from ledger.core import tables as t
from ledger.core.errors import ConflictError, NotFoundError, ValidationError

TEXT_FIELD_MAX_CHARS: Final = 200


def normalise_decision_number(raw: str) -> str:
    """The lookup key of a decision number (``domain.decision_numbers``), or
    ``ValidationError`` naming the field."""
    try:
        return dn.normalise_decision_number(raw)
    except dn.DecisionNumberError as err:
        raise ValidationError("decision_number", str(err)) from None


@dataclass(frozen=True)
class FineInput:
    decision_number: str
    amount_vnd: int
    violator_name: str
    plate: str
    issuing_unit: str
    violation: str

    @classmethod
    def from_json(cls, body: Any, max_amount_vnd: int) -> FineInput:
        """Validate an API body; every problem names its field."""
        if not isinstance(body, dict):
            raise ValidationError("body", "must be a JSON object")
        unknown = sorted(set(body) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError(unknown[0], "is not a known field")
        amount = body.get("amount_vnd")
        # JSON booleans are ints in Python; floats and strings are refused too.
        if type(amount) is not int:
            raise ValidationError("amount_vnd", "must be a JSON integer number of đồng")
        if not 1 <= amount <= max_amount_vnd:
            raise ValidationError("amount_vnd", f"must be between 1 and {max_amount_vnd}")
        fields: dict[str, str] = {}
        for name in ("decision_number", "violator_name", "plate", "issuing_unit", "violation"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(name, "is required and must be a non-empty string")
            value = unicodedata.normalize("NFC", value).strip()
            if len(value) > TEXT_FIELD_MAX_CHARS:
                raise ValidationError(name, f"is longer than {TEXT_FIELD_MAX_CHARS} characters")
            fields[name] = value
        normalise_decision_number(fields["decision_number"])
        return cls(amount_vnd=amount, **fields)

    @property
    def decision_key(self) -> str:
        return normalise_decision_number(self.decision_number)


class RegisterOutcome(Enum):
    CREATED = "created"
    EXISTS = "exists"


@dataclass(frozen=True)
class Fine:
    id: int
    decision_number: str
    decision_key: str
    amount_vnd: int
    violator_name: str
    plate: str
    issuing_unit: str
    violation: str
    created_at: datetime

    def same_as(self, other: FineInput) -> bool:
        return (
            self.decision_key == other.decision_key
            and self.amount_vnd == other.amount_vnd
            and self.violator_name == other.violator_name
            and self.plate == other.plate
            and self.issuing_unit == other.issuing_unit
            and self.violation == other.violation
        )


def _fine_from_row(row: Any) -> Fine:
    return Fine(
        id=int(row.id),
        decision_number=row.decision_number,
        decision_key=row.decision_key,
        amount_vnd=int(row.amount_vnd),
        violator_name=row.violator_name,
        plate=row.plate,
        issuing_unit=row.issuing_unit,
        violation=row.violation,
        created_at=row.created_at,
    )


async def register_fine(conn: AsyncConnection, fine: FineInput) -> tuple[Fine, RegisterOutcome]:
    """Insert a fine; an identical existing one is returned, a different one
    under the same decision number is a ``ConflictError``."""
    inserted = (
        await conn.execute(
            insert(t.fines)
            .values(
                decision_number=fine.decision_number,
                decision_key=fine.decision_key,
                amount_vnd=fine.amount_vnd,
                violator_name=fine.violator_name,
                plate=fine.plate,
                issuing_unit=fine.issuing_unit,
                violation=fine.violation,
            )
            .on_conflict_do_nothing(index_elements=["decision_key"])
            .returning(*t.fines.c)
        )
    ).one_or_none()
    if inserted is not None:
        return _fine_from_row(inserted), RegisterOutcome.CREATED
    existing = await get_fine(conn, fine.decision_number)
    if not existing.same_as(fine):
        raise ConflictError(
            f"fine {existing.decision_number} is already registered with different data"
        )
    return existing, RegisterOutcome.EXISTS


async def get_fine(
    conn: AsyncConnection, decision_number: str, *, for_update: bool = False
) -> Fine:
    key = normalise_decision_number(decision_number)
    query = select(t.fines).where(t.fines.c.decision_key == key)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError(f"no fine with decision number {decision_number.strip()!r}")
    return _fine_from_row(row)


FINE_STATUSES: Final = ("unpaid", "verifying", "paid")

_FINE_STATUS_SQL = text(
    """
    SELECT CASE
        WHEN bool_or(settles_fine) THEN 'paid'
        WHEN bool_or(status IN ('initiated', 'verifying')) THEN 'verifying'
        ELSE 'unpaid' END AS status
      FROM payments WHERE fine_id = :fine_id
    """
)


async def fine_status(conn: AsyncConnection, fine_id: int) -> str:
    """Derived from payments alone (never from a workflow): paid if a payment
    settles the fine, verifying if one is in flight, else unpaid."""
    status = (await conn.execute(_FINE_STATUS_SQL, {"fine_id": fine_id})).scalar_one()
    return str(status)


@dataclass(frozen=True)
class PaymentSummary:
    payment_id: UUID
    bank: str
    amount_vnd: int
    status: str
    settles_fine: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReceiptRef:
    series: str
    number: int
    signature: str = ""


@dataclass(frozen=True)
class FineView:
    fine: Fine
    status: str
    payments: tuple[PaymentSummary, ...]
    receipt: ReceiptRef | None


# The whole view in one round trip (and so one consistent snapshot): the fine,
# each of its payments in order (one row per payment, or one row of NULLs when
# there are none) and the receipt of the payment that has one. Built once:
# SQLAlchemy memoises a statement object's cache key, and the API's hot lookup
# runs its compiled text on the driver (reconciler.api.reads). Rows go through
# ``fine_view_from_rows``.
FINE_VIEW_QUERY: Final = (
    select(
        *t.fines.c,
        t.payments.c.id.label("p_id"),
        t.payments.c.bank.label("p_bank"),
        t.payments.c.amount_vnd.label("p_amount_vnd"),
        t.payments.c.status.label("p_status"),
        t.payments.c.settles_fine.label("p_settles_fine"),
        t.payments.c.created_at.label("p_created_at"),
        t.payments.c.updated_at.label("p_updated_at"),
        t.receipts.c.series.label("r_series"),
        t.receipts.c.number.label("r_number"),
        t.receipts.c.signature.label("r_signature"),
    )
    .select_from(
        t.fines.outerjoin(t.payments, t.payments.c.fine_id == t.fines.c.id).outerjoin(
            t.receipts, t.receipts.c.payment_id == t.payments.c.id
        )
    )
    .where(t.fines.c.decision_key == bindparam("decision_key"))
    .order_by(t.payments.c.created_at, t.payments.c.id)
)


def fine_view_params(decision_number: str) -> dict[str, str]:
    """Parameters of ``FINE_VIEW_QUERY``; ``ValidationError`` for a decision
    number that cannot exist."""
    return {"decision_key": normalise_decision_number(decision_number)}


async def fine_view(conn: AsyncConnection, decision_number: str) -> FineView:
    """Everything the counter needs about a fine, from the ledger alone."""
    rows = (await conn.execute(FINE_VIEW_QUERY, fine_view_params(decision_number))).all()
    return fine_view_from_rows(rows, decision_number)


def fine_view_from_rows(rows: Sequence[Any], decision_number: str) -> FineView:
    """The view from the rows of ``FINE_VIEW_QUERY`` (attribute access by
    column name: SQLAlchemy rows or the driver's named tuples)."""
    if not rows:
        raise NotFoundError(f"no fine with decision number {decision_number.strip()!r}")
    payments = tuple(
        PaymentSummary(
            payment_id=r.p_id,
            bank=r.p_bank,
            amount_vnd=int(r.p_amount_vnd),
            status=r.p_status,
            settles_fine=bool(r.p_settles_fine),
            created_at=r.p_created_at,
            updated_at=r.p_updated_at,
        )
        for r in rows
        if r.p_id is not None
    )
    receipts = [
        ReceiptRef(r.r_series, int(r.r_number), r.r_signature)
        for r in rows
        if r.r_series is not None
    ]
    # Only the payment that settles the fine is ever receipted.
    assert len(receipts) <= 1, f"fine {decision_number!r} has {len(receipts)} receipts"
    if any(p.settles_fine for p in payments):
        status = "paid"
    elif any(p.status in ("initiated", "verifying") for p in payments):
        status = "verifying"
    else:
        status = "unpaid"
    return FineView(
        fine=_fine_from_row(rows[0]),
        status=status,
        payments=payments,
        receipt=receipts[0] if receipts else None,
    )
