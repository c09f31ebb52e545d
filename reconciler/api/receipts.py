"""Receipts for staff: JSON, PDF, reissue (a counted copy). The public
pages (the QR code's check page, the citizen's signed PDF link) are in
``reconciler.api.public``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from ledger.core.errors import NotFoundError
from ledger.receipts.issue import Receipt, get_receipt, record_copy, verify_url
from ledger.receipts.pdf import render_receipt_pdf
from reconciler.api.auth import require
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import path_number, path_series
from reconciler.api.views import full_receipt_json, json_response

NUMBER_MAX = 10**9


def series_number(request: web.Request) -> tuple[str, int]:
    return path_series(request), path_number(request, "number", 1, NUMBER_MAX - 1)


async def _receipt(request: web.Request) -> Receipt:
    series, number = series_number(request)
    async with request.app[ENGINE].connect() as conn:
        receipt = await get_receipt(conn, series, number)
    if receipt is None:
        raise NotFoundError(f"no receipt {series}/{number}")
    return receipt


async def receipt_json(request: web.Request) -> web.Response:
    require(request, "payments:read")
    receipt = await _receipt(request)
    return json_response(full_receipt_json(request.app[SETTINGS].public_base_url, receipt))


async def receipt_pdf(request: web.Request) -> web.Response:
    require(request, "payments:read")
    return await pdf_response(request, await _receipt(request))


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
    """A reprint: the same receipt and number, one more copy counted."""
    require(request, "receipts:read")
    series, number = series_number(request)
    async with request.app[ENGINE].begin() as conn:
        receipt = await record_copy(conn, series, number, datetime.now(UTC))
    return json_response(full_receipt_json(request.app[SETTINGS].public_base_url, receipt))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/receipts/{series}/{number}", receipt_json)
    app.router.add_get("/api/v1/receipts/{series}/{number}/pdf", receipt_pdf)
    app.router.add_post("/api/v1/receipts/{series}/{number}/reissue", reissue)
