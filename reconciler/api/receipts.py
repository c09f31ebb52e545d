"""Receipts for staff: JSON, PDF, reissue (a counted copy). The public
pages (the QR code's check page, the citizen's signed PDF link) are in
``reconciler.api.public``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from ledger.access import Principal
from ledger.core.audit import append_audit
from ledger.core.errors import NotFoundError
from ledger.receipts.issue import Receipt, get_receipt, record_copy, verify_url
from ledger.receipts.pdf import render_receipt_pdf
from reconciler.api.auth import check_unit, require
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import path_number, path_series
from reconciler.api.views import full_receipt_json, json_response

NUMBER_MAX = 10**9


def series_number(request: web.Request) -> tuple[str, int]:
    return path_series(request), path_number(request, "number", 1, NUMBER_MAX - 1)


def _missing(series: str, number: int) -> str:
    return f"no receipt {series}/{number}"


async def scoped_receipt(request: web.Request, principal: Principal) -> Receipt:
    """The receipt, if it exists and is of a unit the caller sees (else 404)."""
    series, number = series_number(request)
    async with request.app[ENGINE].connect() as conn:
        receipt = await get_receipt(conn, series, number)
    if receipt is None:
        raise NotFoundError(_missing(series, number))
    check_unit(principal, _unit(receipt), _missing(series, number))
    return receipt


def _unit(receipt: Receipt) -> str:
    return str(receipt.payload.get("issuing_unit", ""))


async def receipt_json(request: web.Request) -> web.Response:
    principal = require(request, "payments:read")
    receipt = await scoped_receipt(request, principal)
    return json_response(full_receipt_json(request.app[SETTINGS].public_base_url, receipt))


async def receipt_pdf(request: web.Request) -> web.Response:
    principal = require(request, "payments:read")
    return await pdf_response(request, await scoped_receipt(request, principal))


async def pdf_response(request: web.Request, receipt: Receipt) -> web.Response:
    url = verify_url(
        request.app[SETTINGS].public_base_url, receipt.series, receipt.number, receipt.signature
    )
    # PDF layout is CPU work; keep the event loop answering lookups meanwhile.
    pdf = await asyncio.to_thread(render_receipt_pdf, receipt, url)
    name = f"bien-lai-{receipt.series}-{receipt.number}.pdf"
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


async def reissue(request: web.Request) -> web.Response:
    """A reprint: the same receipt and number, one more copy counted, and an
    audit row naming who printed which copy."""
    principal = require(request, "receipts:reissue")
    series, number = series_number(request)
    receipt = await reissue_copy(request, principal, series, number)
    return json_response(full_receipt_json(request.app[SETTINGS].public_base_url, receipt))


async def reissue_copy(
    request: web.Request, principal: Principal, series: str, number: int
) -> Receipt:
    """Count one more copy of a receipt of the caller's scope and audit who
    printed it (the JSON reissue and the console's reprint)."""
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        receipt = await record_copy(conn, series, number, now)
        # Out of scope: the copy is rolled back with this transaction.
        check_unit(principal, _unit(receipt), _missing(series, number))
        await append_audit(
            conn,
            actor=principal.actor,
            action="receipt.reissued",
            subject_type="receipt",
            subject_id=f"{receipt.series}/{receipt.number}",
            now=now,
            detail={"copy": receipt.copies, "payment_id": str(receipt.payment_id)},
        )
    return receipt


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/receipts/{series}/{number}", receipt_json)
    app.router.add_get("/api/v1/receipts/{series}/{number}/pdf", receipt_pdf)
    app.router.add_post("/api/v1/receipts/{series}/{number}/reissue", reissue)
