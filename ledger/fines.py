"""Fines registry: decision numbers, registration and lookup.

A decision number looks like ``01234/QĐ-XPHC``. It is stored as typed (the
display form) and as a normalised key (``domain.decision_numbers``), so that
an officer typing ``01234/qd-xphc`` or `` 01234 / QĐ-XPHC`` finds the same
fine. A fine's status is derived from its payments alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import decision_numbers as dn
from ledger.core import tables as t
from ledger.core.checks import check_amount, check_object
from ledger.core.errors import ConflictError, NotFoundError, ValidationError
from ledger.core.rows import columns, one_row, row_mapper
from ledger.payments.model import LIVE_STATUSES
from ledger.receipts.issue import ReceiptRef

TEXT_FIELD_MAX_CHARS: Final = 200


def normalise_decision_number(raw: str) -> str:
    """The lookup key of a decision number (``domain.decision_numbers``), or
    ``ValidationError`` naming the field."""
    try:
        return dn.normalise_decision_number(raw)
    except dn.DecisionNumberError as err:
        raise ValidationError("decision_number", str(err)) from None


def check_text_field(name: str, value: object) -> str:
    """A fine's text field: a non-empty string, NFC, trimmed, bounded."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "is required and must be a non-empty string")
    value = unicodedata.normalize("NFC", value).strip()
    if len(value) > TEXT_FIELD_MAX_CHARS:
        raise ValidationError(name, f"is longer than {TEXT_FIELD_MAX_CHARS} characters")
    return value


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
        body = check_object(body, cls.__dataclass_fields__)
        amount = check_amount("amount_vnd", body.get("amount_vnd"), max_amount_vnd)
        fields: dict[str, str] = {}
        for name in ("decision_number", "violator_name", "plate", "issuing_unit", "violation"):
            fields[name] = check_text_field(name, body.get(name))
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
    """A ``fines`` row."""

    id: int
    decision_number: str
    decision_key: str
    amount_vnd: int
    violator_name: str
    plate: str
    issuing_unit: str
    violation: str
    created_at: datetime
    # 0014: set by ``ledger.fines_admin`` (an amendment, a cancellation).
    due_date: date | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None

    def same_as(self, other: FineInput) -> bool:
        return (
            self.decision_key == other.decision_key
            and self.amount_vnd == other.amount_vnd
            and self.violator_name == other.violator_name
            and self.plate == other.plate
            and self.issuing_unit == other.issuing_unit
            and self.violation == other.violation
        )


_FINE_COLUMNS: Final = columns(Fine, t.fines)
_fine: Final = row_mapper(Fine)


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
            .returning(*_FINE_COLUMNS)
        )
    ).one_or_none()
    if inserted is not None:
        return _fine(inserted), RegisterOutcome.CREATED
    existing = await get_fine(conn, fine.decision_number)
    if not existing.same_as(fine):
        raise ConflictError(
            f"fine {existing.decision_number} is already registered with different data"
        )
    return existing, RegisterOutcome.EXISTS


def missing_fine_message(decision_number: str) -> str:
    """What a lookup of a fine that does not exist (for the caller) says."""
    return f"no fine with decision number {decision_number.strip()!r}"


async def get_fine(
    conn: AsyncConnection, decision_number: str, *, for_update: bool = False
) -> Fine:
    key = normalise_decision_number(decision_number)
    query = select(*_FINE_COLUMNS).where(t.fines.c.decision_key == key)
    if for_update:
        query = query.with_for_update()
    return await one_row(conn, query, _fine, missing_fine_message(decision_number))


class FineStatus(StrEnum):
    UNPAID = "unpaid"
    VERIFYING = "verifying"  # a payment is in flight
    PAID = "paid"


FINE_STATUSES: Final = tuple(status.value for status in FineStatus)
# The literals are ``FineStatus`` and the live payment statuses
# (tests/integration/ledger/test_closed_sets_sql.py checks both).
FINE_STATUS_SQL: Final = text(
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
    status = (await conn.execute(FINE_STATUS_SQL, {"fine_id": fine_id})).scalar_one()
    return str(status)


@dataclass(frozen=True)
class PaymentSummary:
    """A fine's payment as the fine view shows it (columns prefixed ``p_``)."""

    payment_id: UUID
    bank: str
    amount_vnd: int
    status: str
    settles_fine: bool
    created_at: datetime
    updated_at: datetime


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
        *_FINE_COLUMNS,
        *columns(PaymentSummary, t.payments, prefix="p_", payment_id=t.payments.c.id),
        *columns(ReceiptRef, t.receipts, prefix="r_"),
    )
    .select_from(
        t.fines.outerjoin(t.payments, t.payments.c.fine_id == t.fines.c.id).outerjoin(
            t.receipts, t.receipts.c.payment_id == t.payments.c.id
        )
    )
    .where(t.fines.c.decision_key == bindparam("decision_key"))
    .order_by(t.payments.c.created_at, t.payments.c.id)
)
_payment_summary: Final = row_mapper(PaymentSummary, prefix="p_")
_receipt_ref: Final = row_mapper(ReceiptRef, prefix="r_")


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
        raise NotFoundError(missing_fine_message(decision_number))
    payments = tuple(_payment_summary(r) for r in rows if r.p_payment_id is not None)
    receipts = [_receipt_ref(r) for r in rows if r.r_series is not None]
    # Only the payment that settles the fine is ever receipted.
    assert len(receipts) <= 1, f"fine {decision_number!r} has {len(receipts)} receipts"
    if any(p.settles_fine for p in payments):
        status = FineStatus.PAID
    elif any(p.status in LIVE_STATUSES for p in payments):
        status = FineStatus.VERIFYING
    else:
        status = FineStatus.UNPAID
    return FineView(
        fine=_fine(rows[0]),
        status=status,
        payments=payments,
        receipt=receipts[0] if receipts else None,
    )
