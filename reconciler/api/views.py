"""JSON shapes of the API's resources (docs/interfaces.md)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ledger.fines import Fine, FineView, PaymentSummary
from ledger.payments import PaymentView
from ledger.receipts.issue import Receipt, ReceiptRef, verify_url

_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Vietnamese text kept readable (not \\u-escaped)."""
    return web.json_response(data, status=status, dumps=_dumps)


def receipt_json(base_url: str, receipt: ReceiptRef | None) -> dict[str, Any] | None:
    if receipt is None:
        return None
    series = quote(receipt.series, safe="")
    return {
        "series": receipt.series,
        "number": receipt.number,
        "verify_url": verify_url(base_url, receipt.series, receipt.number, receipt.signature),
        "pdf_url": f"{base_url}/api/v1/receipts/{series}/{receipt.number}/pdf",
    }


def payment_summary_json(payment: PaymentSummary) -> dict[str, Any]:
    return {
        "payment_id": str(payment.payment_id),
        "bank": payment.bank,
        "amount_vnd": payment.amount_vnd,
        "status": payment.status,
        "settles_fine": payment.settles_fine,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
    }


def fine_json(fine: Fine) -> dict[str, Any]:
    return {
        "decision_number": fine.decision_number,
        "amount_vnd": fine.amount_vnd,
        "violator_name": fine.violator_name,
        "plate": fine.plate,
        "issuing_unit": fine.issuing_unit,
        "violation": fine.violation,
        "created_at": fine.created_at.isoformat(),
        "due_date": None if fine.due_date is None else fine.due_date.isoformat(),
        "cancelled_at": None if fine.cancelled_at is None else fine.cancelled_at.isoformat(),
    }


def fine_view_json(base_url: str, view: FineView) -> dict[str, Any]:
    return {
        **fine_json(view.fine),
        "status": view.status,
        "payments": [payment_summary_json(p) for p in view.payments],
        "receipt": receipt_json(base_url, view.receipt),
    }


def payment_view_json(base_url: str, view: PaymentView) -> dict[str, Any]:
    payment = view.payment
    return {
        "payment_id": str(payment.id),
        "decision_number": payment.decision_number,
        "bank": payment.bank,
        "amount_vnd": payment.amount_vnd,
        "status": payment.status,
        "settles_fine": payment.settles_fine,
        "channel": payment.channel,
        "bank_ref": payment.bank_ref,
        "decline_reason": payment.decline_reason,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
        "receipt": receipt_json(base_url, view.receipt),
        "history": [
            {
                "at": event.at.isoformat(),
                "from_status": event.from_status,
                "to_status": event.to_status,
                "cause": event.cause,
                "detail": event.detail,
            }
            for event in view.history
        ],
    }


def full_receipt_json(base_url: str, receipt: Receipt) -> dict[str, Any]:
    return {
        **(
            receipt_json(base_url, ReceiptRef(receipt.series, receipt.number, receipt.signature))
            or {}
        ),
        "issued_at": receipt.issued_at.isoformat(),
        "payment_id": str(receipt.payment_id),
        "copies": receipt.copies,
        "key_id": receipt.key_id,
        "signature": receipt.signature,
        "payload": receipt.payload,
    }
