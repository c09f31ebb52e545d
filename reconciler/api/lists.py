"""The console's JSON lists: payments, receipts, refunds, the audit log and
its verification; newest first, in cursor pages.

``cursor`` is what the previous page answered as ``next_cursor`` (null on
the last page); a cursor that is not one (forged, truncated, garbage) is a
400 naming ``cursor``. A unit-scoped caller's lists are narrowed in SQL
(``ledger.listings``): a filter naming another unit finds nothing, it is
not refused, so a stranger cannot tell which units exist.

A refund is the ledger's own notion: a payment whose status is
``refunded`` (a duplicate debit given back, see ``ledger.payments.model``),
so ``/refunds`` is the payments list fixed to that status.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from aiohttp import web

from domain.business_time import business_day_start
from domain.decision_numbers import DecisionNumberError, normalise_decision_number
from domain.formats import RECEIPT_SERIES_RE
from ledger import listings as ls
from ledger.access import Principal
from ledger.core.audit import AuditEntry, AuditReport, verify_audit_chain
from ledger.core.errors import ValidationError
from ledger.payments.model import PaymentStatus
from reconciler.api.auth import require
from reconciler.api.disputes import audit_json
from reconciler.api.errors import ApiError
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import cursor_before, page_limit, parse_date
from reconciler.api.views import json_response

# Longer than any unit, actor, action or subject the service writes.
TEXT_FILTER_CHARS_MAX: Final = 200
_PAYMENT_CURSOR_RE: Final = re.compile(r"(\d{1,17})\.([0-9a-f]{32})", re.ASCII)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_STATUSES: Final = frozenset(s.value for s in PaymentStatus)


def _text(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if len(raw) > TEXT_FILTER_CHARS_MAX:
        raise ValidationError(name, f"is longer than {TEXT_FILTER_CHARS_MAX} characters")
    return raw


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    return None if not raw else parse_date(raw, name)


def _period(request: web.Request) -> tuple[datetime | None, datetime | None]:
    """``from``..``to``: business dates, both days included."""
    first, last = _day(request, "from"), _day(request, "to")
    if first is not None and last is not None and last < first:
        raise ValidationError("to", "must not be before 'from'")
    since = None if first is None else business_day_start(first)
    until = None if last is None else business_day_start(last + timedelta(days=1))
    return since, until


def _bank(request: web.Request) -> str | None:
    bank = request.query.get("bank")
    banks = request.app[SETTINGS].banks
    if bank and bank not in banks:
        raise ValidationError("bank", f"must be one of: {', '.join(sorted(banks)) or '(none)'}")
    return bank or None


def payment_cursor(row: ls.PaymentRow) -> str:
    return position_cursor(row.created_at, row.id)


def position_cursor(created_at: datetime, payment_id: UUID) -> str:
    """The cursor ``payment_position`` reads back: (created_at, id)."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{payment_id.hex}"


def payment_position(request: web.Request) -> tuple[datetime, UUID] | None:
    """The (created_at, id) a payment list's ``cursor`` names (400 if forged)."""
    raw = request.query.get("cursor")
    if not raw:
        return None
    found = _PAYMENT_CURSOR_RE.fullmatch(raw)
    if found is None:
        raise ValidationError("cursor", "is not a cursor this list gave")
    moment = _EPOCH + timedelta(microseconds=int(found[1]))
    return moment, UUID(hex=found[2])


def _payment_json(row: ls.PaymentRow) -> dict[str, Any]:
    return {
        "payment_id": str(row.id),
        "decision_number": row.decision_number,
        "issuing_unit": row.issuing_unit,
        "bank": row.bank,
        "amount_vnd": row.amount_vnd,
        "status": row.status,
        "channel": row.channel,
        "bank_ref": row.bank_ref,
        "created_at": row.created_at.isoformat(),
        "debited_at": None if row.debited_at is None else row.debited_at.isoformat(),
    }


async def _payments_page(
    request: web.Request, name: str, filters: ls.PaymentFilters
) -> web.Response:
    principal = require(request, "payments:read")
    limit = page_limit(request, ls.LISTING_LIMIT_MAX)
    before = payment_position(request)
    async with request.app[ENGINE].connect() as conn:
        rows = await ls.list_payments(
            conn, filters, units=principal.units, before=before, limit=limit
        )
    last = payment_cursor(rows[-1]) if len(rows) == limit else None
    return json_response({name: [_payment_json(r) for r in rows], "next_cursor": last})


async def list_payments(request: web.Request) -> web.Response:
    require(request, "payments:read")
    status = request.query.get("status") or None
    if status is not None and status not in _STATUSES:
        raise ValidationError("status", f"must be one of: {', '.join(sorted(_STATUSES))}")
    decision_key = None
    if request.query.get("decision_number"):
        try:
            decision_key = normalise_decision_number(request.query["decision_number"])
        except DecisionNumberError as err:
            raise ValidationError("decision_number", str(err)) from None
    since, until = _period(request)
    filters = ls.PaymentFilters(status, _bank(request), decision_key, since, until)
    return await _payments_page(request, "payments", filters)


async def list_refunds(request: web.Request) -> web.Response:
    require(request, "payments:read")
    filters = ls.PaymentFilters(status=PaymentStatus.REFUNDED.value, bank=_bank(request))
    return await _payments_page(request, "refunds", filters)


def _receipt_json(row: ls.ReceiptRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "series": row.series,
        "number": row.number,
        "issuing_unit": row.issuing_unit,
        "payment_id": str(row.payment_id),
        "issued_at": row.issued_at.isoformat(),
        "copies": row.copies,
    }


async def list_receipts(request: web.Request) -> web.Response:
    principal = require(request, "payments:read")
    series = request.query.get("series") or None
    if series is not None and not RECEIPT_SERIES_RE.fullmatch(series):
        raise ValidationError("series", "must be 1-40 capital letters, digits or '-'")
    limit = page_limit(request, ls.LISTING_LIMIT_MAX)
    async with request.app[ENGINE].connect() as conn:
        rows = await ls.list_receipts(
            conn,
            series=series,
            issuing_unit=_text(request, "issuing_unit"),
            day=_day(request, "day"),
            units=principal.units,
            before_id=cursor_before(request),
            limit=limit,
        )
    last = rows[-1].id if len(rows) == limit else None
    return json_response(
        {
            "receipts": [_receipt_json(r) for r in rows],
            "next_cursor": None if last is None else str(last),
        }
    )


async def list_audit(request: web.Request) -> web.Response:
    principal = require(request, "audit:read")
    rows, last = await audit_page(request, principal)
    return json_response(
        {"audit": [audit_json(r) for r in rows], "next_cursor": None if last is None else str(last)}
    )


async def audit_page(
    request: web.Request, principal: Principal
) -> tuple[list[AuditEntry], int | None]:
    """A page of the audit log as the query asks (the JSON list and the
    console's audit page), and the next page's cursor."""
    if principal.units:
        # An audit row names an actor and a subject, not an issuing unit:
        # it cannot be narrowed to a unit, so a unit-scoped user reads none.
        raise ApiError(403, "unit_scoped", "the audit log is for users of every unit")
    since, until = _period(request)
    filters = ls.AuditFilters(
        actor=_text(request, "actor"),
        action=_text(request, "action"),
        subject_type=_text(request, "subject_type"),
        subject_id=_text(request, "subject_id"),
        since=since,
        until=until,
    )
    limit = page_limit(request, ls.LISTING_LIMIT_MAX)
    async with request.app[ENGINE].connect() as conn:
        rows = await ls.list_audit(conn, filters, before_id=cursor_before(request), limit=limit)
    return list(rows), rows[-1].id if len(rows) == limit else None


async def audit_verification(request: web.Request) -> web.Response:
    require(request, "audit:read")
    report = await verify_chain(request)
    return json_response(
        {
            "ok": report.ok,
            "rows_checked": report.rows_checked,
            "head_id": report.head_id,
            "problems_total": report.problems_total,
            "problems": [
                {"row_id": p.row_id, "kind": p.kind, "message": p.message} for p in report.problems
            ],
        }
    )


async def verify_chain(request: web.Request) -> AuditReport:
    """The whole chain recomputed, as ``reconciler audit verify`` does, in
    one snapshot (rows appended meanwhile would otherwise not match the head
    read); paged, so memory is bounded whatever the log's length."""
    async with request.app[ENGINE].connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            return await verify_audit_chain(conn)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/payments", list_payments)
    app.router.add_get("/api/v1/receipts", list_receipts)
    app.router.add_get("/api/v1/refunds", list_refunds)
    app.router.add_get("/api/v1/audit", list_audit)
    app.router.add_get("/api/v1/audit/verification", audit_verification)
