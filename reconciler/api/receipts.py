"""Receipts: JSON, PDF, reissue (a counted copy), and the public check page
behind the QR code."""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime

from aiohttp import web

from ledger.access import Principal
from ledger.core.audit import append_audit
from ledger.core.errors import NotFoundError, ValidationError
from ledger.receipts.issue import Receipt, get_receipt, receipt_problems, record_copy, verify_url
from ledger.receipts.pdf import format_amount_vnd, format_vietnam_time, render_receipt_pdf
from reconciler.api.auth import check_unit, require
from reconciler.api.keys import ENGINE, SETTINGS, VERIFIER
from reconciler.api.params import path_number
from reconciler.api.views import full_receipt_json, json_response

NUMBER_MAX = 10**9


def _series_number(request: web.Request) -> tuple[str, int]:
    series = request.match_info["series"]
    number = path_number(request, "number", 1, NUMBER_MAX - 1)
    if len(series) > 40:
        raise ValidationError("series", "is longer than 40 characters")
    return series, number


def _missing(series: str, number: int) -> str:
    return f"no receipt {series}/{number}"


async def _receipt(request: web.Request, principal: Principal) -> Receipt:
    """The receipt, if it exists and is of a unit the caller sees (else 404)."""
    series, number = _series_number(request)
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
    receipt = await _receipt(request, principal)
    return json_response(full_receipt_json(request.app[SETTINGS].public_base_url, receipt))


async def receipt_pdf(request: web.Request) -> web.Response:
    principal = require(request, "payments:read")
    receipt = await _receipt(request, principal)
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
    series, number = _series_number(request)
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
    return json_response(full_receipt_json(request.app[SETTINGS].public_base_url, receipt))


_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kiểm tra biên lai {series}/{number}</title>
<style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
.ok{{color:#0a6b2d}}.bad{{color:#b00020}}dt{{font-weight:bold}}dd{{margin:0 0 .5rem}}</style>
</head><body>
<h1 class="{css}">{verdict}</h1>
<p>{explanation}</p>
{details}
</body></html>"""


def _page(
    status: int,
    css: str,
    verdict: str,
    explanation: str,
    details: str = "",
    *,
    series: str,
    number: int,
) -> web.Response:
    body = _PAGE.format(
        series=html.escape(series),
        number=number,
        css=css,
        verdict=html.escape(verdict),
        explanation=html.escape(explanation),
        details=details,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


async def verify_page(request: web.Request) -> web.Response:
    """Public: anyone who scans the QR code learns whether the paper is genuine."""
    series, number = _series_number(request)
    token = request.query.get("s", "")
    async with request.app[ENGINE].connect() as conn:
        receipt = await get_receipt(conn, series, number)
    if receipt is None:
        return _page(
            404,
            "bad",
            "KHÔNG TÌM THẤY BIÊN LAI",
            "Không có biên lai nào với số này. Biên lai có thể là giả.",
            series=series,
            number=number,
        )
    problems = receipt_problems(receipt, request.app[VERIFIER])
    if problems or not token or not receipt.signature.startswith(token):
        return _page(
            200,
            "bad",
            "BIÊN LAI KHÔNG HỢP LỆ (GIẢ MẠO)",
            "Mã xác thực trên biên lai không khớp với biên lai đã phát hành.",
            series=series,
            number=number,
        )
    p = receipt.payload
    rows = [
        ("Số biên lai", f"{receipt.series}/{receipt.number}"),
        ("Số quyết định", p.get("decision_number", "")),
        ("Số tiền", format_amount_vnd(int(p.get("amount_vnd", 0)))),
        ("Người nộp", p.get("violator_name", "")),
        ("Biển số", p.get("plate", "")),
        ("Đơn vị", p.get("issuing_unit", "")),
        ("Thời gian thu", format_vietnam_time(receipt.issued_at)),
    ]
    details = (
        "<dl>"
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
        + "</dl>"
    )
    return _page(
        200,
        "ok",
        "BIÊN LAI HỢP LỆ",
        "Biên lai này do hệ thống phát hành và chữ ký số hợp lệ. "
        "Hãy so sánh các thông tin dưới đây với biên lai giấy.",
        details,
        series=series,
        number=number,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/receipts/{series}/{number}", receipt_json)
    app.router.add_get("/api/v1/receipts/{series}/{number}/pdf", receipt_pdf)
    app.router.add_post("/api/v1/receipts/{series}/{number}/reissue", reissue)
    app.router.add_get("/verify/{series}/{number}", verify_page)
