"""OpenAPI paths and schemas of fines, payments, receipts, their listings,
the audit log and bank-link operations (``reconciler.api.openapi``)."""

from __future__ import annotations

from typing import Any

from ledger.core.paging import LIST_LIMIT_MAX
from ledger.fines import FINE_STATUSES, TEXT_FIELD_MAX_CHARS
from ledger.listings import LISTING_LIMIT_MAX
from ledger.ops_alerts import STATUSES as ALERT_STATUSES
from ledger.payments.model import PaymentStatus
from reconciler.api.lists import TEXT_FILTER_CHARS_MAX
from reconciler.api.openapi_parts import (
    BOOL,
    DATE,
    INT,
    NINT,
    NOBJ,
    NSTR,
    OBJ,
    SERIES,
    STR,
    UUID,
    Schema,
    array,
    cursor_before,
    decision_path,
    json_body,
    limit,
    listing,
    nullable,
    obj,
    operation,
    path,
    payment_cursor,
    query,
    ref,
)
from reconciler.api.operations import OUTAGES_LIMIT_MAX
from reconciler.api.payments import IDEMPOTENCY_KEY_MAX_CHARS
from reconciler.api.receipts import NUMBER_MAX

PAYMENT_STATUSES = [s.value for s in PaymentStatus]


def schemas() -> dict[str, Schema]:
    receipt_ref = obj({"series": STR, "number": INT, "verify_url": STR, "pdf_url": STR})
    return {
        "ReceiptRef": receipt_ref,
        "Receipt": obj(
            {
                **receipt_ref["properties"],
                "issued_at": STR,
                "payment_id": STR,
                "copies": INT,
                "key_id": NSTR,
                "signature": STR,
                "payload": OBJ,
            }
        ),
        "PaymentSummary": obj(
            {
                "payment_id": STR,
                "bank": STR,
                "amount_vnd": INT,
                "status": {"enum": PAYMENT_STATUSES},
                "settles_fine": BOOL,
                "created_at": STR,
                "updated_at": STR,
            }
        ),
        "FineView": obj(
            {
                "decision_number": STR,
                "amount_vnd": INT,
                "violator_name": STR,
                "plate": STR,
                "issuing_unit": STR,
                "violation": STR,
                "created_at": STR,
                "due_date": nullable(DATE),
                "cancelled_at": NSTR,
                "status": {"enum": list(FINE_STATUSES)},
                "payments": array(ref("PaymentSummary")),
                "receipt": nullable(ref("ReceiptRef")),
            }
        ),
        "Payment": obj(
            {
                "payment_id": STR,
                "decision_number": STR,
                "bank": STR,
                "amount_vnd": INT,
                "status": {"enum": PAYMENT_STATUSES},
                "settles_fine": BOOL,
                "channel": STR,
                "bank_ref": NSTR,
                "decline_reason": NSTR,
                "created_at": STR,
                "updated_at": STR,
                "receipt": nullable(ref("ReceiptRef")),
                "history": array(
                    obj(
                        {
                            "at": STR,
                            "from_status": NSTR,
                            "to_status": STR,
                            "cause": STR,
                            "detail": NOBJ,
                        }
                    )
                ),
            }
        ),
        "PaymentRow": obj(
            {
                "payment_id": STR,
                "decision_number": STR,
                "issuing_unit": STR,
                "bank": STR,
                "amount_vnd": INT,
                "status": {"enum": PAYMENT_STATUSES},
                "channel": STR,
                "bank_ref": NSTR,
                "created_at": STR,
                "debited_at": NSTR,
            }
        ),
        "ReceiptRow": obj(
            {
                "id": INT,
                "series": STR,
                "number": INT,
                "issuing_unit": STR,
                "payment_id": STR,
                "issued_at": STR,
                "copies": INT,
            }
        ),
        "AuditEntry": obj(
            {
                "id": INT,
                "at": STR,
                "actor": STR,
                "action": STR,
                "subject_type": STR,
                "subject_id": STR,
                "detail": OBJ,
            }
        ),
        "Outage": obj(
            {
                "id": INT,
                "bank": STR,
                "started_at": STR,
                "ended_at": NSTR,
                "cause": NSTR,
                "open": BOOL,
                "duration_seconds": {"type": ["number", "null"]},
            }
        ),
        "Alert": obj(
            {
                "fingerprint": STR,
                "alertname": STR,
                "status": {"enum": list(ALERT_STATUSES)},
                "severity": STR,
                "team": STR,
                "bank": NSTR,
                "receiver": STR,
                "labels": OBJ,
                "annotations": OBJ,
                "starts_at": STR,
                "ends_at": NSTR,
                "received_at": STR,
            }
        ),
    }


def _receipt_params() -> tuple[dict[str, Any], ...]:
    number = {"type": "integer", "minimum": 1, "maximum": NUMBER_MAX - 1}
    return (
        path("series", SERIES, "the receipt's series"),
        path("number", number, "the receipt's number in its series"),
    )


def _fine_body(max_amount_vnd: int) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": TEXT_FIELD_MAX_CHARS}
    return json_body(
        {
            **obj(
                {
                    "decision_number": text,
                    "amount_vnd": {"type": "integer", "minimum": 1, "maximum": max_amount_vnd},
                    "violator_name": text,
                    "plate": text,
                    "issuing_unit": text,
                    "violation": text,
                }
            ),
            "additionalProperties": False,
        }
    )


def _payment_body(banks: list[str]) -> dict[str, Any]:
    return json_body(
        {
            **obj(
                {
                    "bank": {"enum": banks},
                    "payer_account": {"type": "string", "pattern": "^[A-Za-z0-9]{1,34}$"},
                }
            ),
            "additionalProperties": False,
        }
    )


def _period() -> tuple[dict[str, Any], ...]:
    return (
        query("from", DATE, "first business date (Asia/Ho_Chi_Minh), included"),
        query("to", DATE, "last business date, included; not before from"),
    )


def _filter_text(name: str, what: str) -> dict[str, Any]:
    return query(name, {"type": "string", "maxLength": TEXT_FILTER_CHARS_MAX}, what)


def paths(banks: list[str], max_amount_vnd: int) -> dict[str, dict[str, Any]]:
    """Fines, payments, receipts, listings, audit and operations."""
    bank_q = query("bank", {"enum": banks}, "only this bank's")
    return {
        "/api/v1/fines": {
            "post": operation(
                "Register a fine decision",
                "fines:write",
                {
                    201: ("registered", ref("FineView")),
                    200: ("an identical one exists", ref("FineView")),
                },
                tag="fines",
                body=_fine_body(max_amount_vnd),
                errors=(409,),
            )
        },
        "/api/v1/fines/{decision_number}": {
            "get": operation(
                "A fine with its status, payments and receipt (ledger only)",
                "fines:read",
                {200: ("the fine", ref("FineView"))},
                tag="fines",
                params=(decision_path(),),
            )
        },
        "/api/v1/fines/{decision_number}/payments": {
            "post": operation(
                "Start a payment of the fine (idempotent by Idempotency-Key)",
                "payments:write",
                {
                    202: (
                        "recorded; its workflow runs",
                        obj(
                            {
                                "payment_id": STR,
                                "status": {"enum": PAYMENT_STATUSES},
                                "decision_number": STR,
                                "bank": STR,
                                "amount_vnd": INT,
                            }
                        ),
                    )
                },
                tag="payments",
                params=(
                    decision_path(),
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": IDEMPOTENCY_KEY_MAX_CHARS,
                        },
                        "description": "the same key and body return the same payment",
                    },
                ),
                body=_payment_body(banks),
                errors=(409, 422),
            )
        },
        "/api/v1/payments/{payment_id}": {
            "get": operation(
                "A payment with its history",
                "payments:read",
                {200: ("the payment", ref("Payment"))},
                tag="payments",
                params=(path("payment_id", UUID, "the payment's id"),),
            )
        },
        "/api/v1/payments": {
            "get": listing(
                "Payments, newest first (unit scoped)",
                "payments:read",
                ("payments", ref("PaymentRow")),
                tag="payments",
                params=(
                    query("status", {"enum": PAYMENT_STATUSES}, "only payments in this state"),
                    bank_q,
                    query("decision_number", STR, "only this fine's (typed any way)"),
                    *_period(),
                    payment_cursor(),
                    limit(LISTING_LIMIT_MAX),
                ),
            )
        },
        "/api/v1/refunds": {
            "get": listing(
                "Refunded payments, newest first (unit scoped)",
                "payments:read",
                ("refunds", ref("PaymentRow")),
                tag="payments",
                params=(bank_q, payment_cursor(), limit(LISTING_LIMIT_MAX)),
            )
        },
        "/api/v1/banks/{bank}/link-recovered": {
            "post": operation(
                "The link-recovery event by hand (audited)",
                "ops:write",
                {
                    200: ("the recovery ended", obj({"bank": STR, "status": STR})),
                    202: (
                        "the recovery goes on",
                        obj({"bank": STR, "status": STR, "recovery_workflow_id": STR}),
                    ),
                },
                tag="operations",
                params=(path("bank", {"type": "string", "minLength": 1}, "a configured bank"),),
            )
        },
        **_receipt_paths(),
        **_audit_and_ops_paths(),
    }


def _receipt_paths() -> dict[str, dict[str, Any]]:
    return {
        "/api/v1/receipts/{series}/{number}": {
            "get": operation(
                "A receipt as JSON",
                "payments:read",
                {200: ("the receipt", ref("Receipt"))},
                tag="receipts",
                params=_receipt_params(),
            )
        },
        "/api/v1/receipts/{series}/{number}/pdf": {
            "get": operation(
                "A receipt as PDF",
                "payments:read",
                {200: ("the PDF", None)},
                tag="receipts",
                params=_receipt_params(),
                content_type="application/pdf",
            )
        },
        "/api/v1/receipts/{series}/{number}/reissue": {
            "post": operation(
                "A counted copy of the receipt (audited)",
                "receipts:reissue",
                {200: ("the receipt, copies counted", ref("Receipt"))},
                tag="receipts",
                params=_receipt_params(),
            )
        },
        "/api/v1/receipts": {
            "get": listing(
                "Receipts, newest first (unit scoped)",
                "payments:read",
                ("receipts", ref("ReceiptRow")),
                tag="receipts",
                params=(
                    query("series", SERIES, "only this series"),
                    _filter_text("issuing_unit", "only this unit's"),
                    query("day", DATE, "only this business date"),
                    cursor_before(),
                    limit(LISTING_LIMIT_MAX),
                ),
            )
        },
    }


def _audit_and_ops_paths() -> dict[str, dict[str, Any]]:
    verification = obj(
        {
            "ok": BOOL,
            "rows_checked": INT,
            "head_id": NINT,
            "problems_total": INT,
            "problems": array(obj({"row_id": NINT, "kind": STR, "message": STR})),
        }
    )
    return {
        "/api/v1/audit": {
            "get": listing(
                "The audit log, newest first (not for unit-scoped users)",
                "audit:read",
                ("audit", ref("AuditEntry")),
                tag="audit",
                params=(
                    _filter_text("actor", "who did it"),
                    _filter_text("action", "what was done"),
                    _filter_text("subject_type", "to what kind of thing"),
                    _filter_text("subject_id", "to which one"),
                    *_period(),
                    cursor_before(),
                    limit(LISTING_LIMIT_MAX),
                ),
            )
        },
        "/api/v1/audit/verification": {
            "get": operation(
                "The audit hash chain recomputed",
                "audit:read",
                {200: ("the verification", verification)},
                tag="audit",
            )
        },
        "/api/v1/outages": {
            "get": operation(
                "Open and recent bank-link outages",
                "ops:read",
                {
                    200: (
                        "outages",
                        obj(
                            {
                                "open": array(ref("Outage")),
                                "recent": array(ref("Outage")),
                                "next_cursor": nullable(STR),
                            }
                        ),
                    )
                },
                tag="operations",
                params=(
                    query("bank", {"type": "string"}, "only this bank's"),
                    query(
                        "cursor",
                        {"type": "string", "pattern": r"^\d{1,17}\.\d{1,18}$"},
                        "the previous page's next_cursor",
                    ),
                    limit(OUTAGES_LIMIT_MAX),
                ),
            )
        },
        "/api/v1/alerts": {
            "get": operation(
                "Alerts Alertmanager delivered, firing first",
                "ops:read",
                {200: ("alerts", obj({"alerts": array(ref("Alert"))}))},
                tag="operations",
                params=(
                    query("status", {"enum": list(ALERT_STATUSES)}, "only these"),
                    limit(LIST_LIMIT_MAX),
                ),
            )
        },
    }
