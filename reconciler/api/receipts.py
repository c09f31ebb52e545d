"""Receipts: JSON, PDF, reissue (a counted copy), and the public check page
behind the QR code."""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime

from aiohttp import web

from ledger.core.errors import NotFoundError
from ledger.receipts.issue import Receipt, get_receipt, receipt_problems, record_copy, verify_url
from ledger.receipts.pdf import format_amount_vnd, format_vietnam_time, render_receipt_pdf
from reconciler.api.auth import require
from reconciler.api.keys import ENGINE, SETTINGS, VERIFIER
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
    series, number = series_number(request)
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
