"""The public receipt pages, without a token: the check page behind a
receipt's QR code, and the citizen's signed link to their PDF.

What a stranger can learn here is bounded three ways:

* the check page shows a receipt only for its exact token (22 characters,
  132 bits, compared in constant time); a wrong or missing token answers
  byte for byte as a receipt that does not exist, after the same database
  read and the same comparison (against a dummy), so neither the answer
  nor its timing tells whether the series and number exist;
* what it shows is the minimum to compare with the paper: the receipt's
  facts, a partial name and a partly masked plate (``domain.privacy``);
* each client address has a rate limit (``reconciler.api.limits``).

A signed PDF link that was changed or has expired answers as an unknown
receipt does.
"""

from __future__ import annotations

import html
import secrets
import time
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

from aiohttp import web

from domain.privacy import mask_name, mask_plate
from ledger.core.errors import NotFoundError
from ledger.receipts.issue import (
    VERIFY_TOKEN_CHARS,
    Receipt,
    get_receipt,
    receipt_problems,
    verify_token_matches,
)
from ledger.receipts.pdf import format_amount_vnd, format_vietnam_time
from reconciler.api.keys import CITIZEN_LINKS, ENGINE, VERIFIER
from reconciler.api.limits import throttle
from reconciler.api.receipts import pdf_response, series_number

PUBLIC_LIMIT: Final = "public"
# Compared with when no receipt exists, so both cases do the same work.
_NO_RECEIPT: Final = Receipt(
    series="-",
    number=0,
    issued_at=datetime(2000, 1, 1, tzinfo=UTC),
    payload={},
    payload_canonical="",
    signature=secrets.token_urlsafe(VERIFY_TOKEN_CHARS),
    key_id="",
    copies=0,
    payment_id=UUID(int=0),
)
# The page is shown to whoever holds the paper: no caching, no indexing, no
# Referer carrying the token to another site, nothing loaded from elsewhere.
_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
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
    status: int, css: str, verdict: str, explanation: str, details: str, *, series: str, number: int
) -> web.Response:
    body = _PAGE.format(
        series=html.escape(series),
        number=number,
        css=css,
        verdict=html.escape(verdict),
        explanation=html.escape(explanation),
        details=details,
    )
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS
    )


def _unknown(series: str, number: int) -> web.Response:
    return _page(
        404,
        "bad",
        "KHÔNG TÌM THẤY BIÊN LAI",
        "Không có biên lai nào với số và mã kiểm tra này. Biên lai có thể là giả.",
        "",
        series=series,
        number=number,
    )


async def verify_page(request: web.Request) -> web.Response:
    """Public: whoever scans the QR code learns whether the paper is genuine."""
    throttle(request, PUBLIC_LIMIT)
    series, number = series_number(request)
    token = request.query.get("s", "")
    async with request.app[ENGINE].connect() as conn:
        receipt = await get_receipt(conn, series, number)
    matches = verify_token_matches(receipt or _NO_RECEIPT, token)
    if receipt is None or not matches:
        return _unknown(series, number)
    if receipt_problems(receipt, request.app[VERIFIER]):
        return _page(
            200,
            "bad",
            "BIÊN LAI KHÔNG HỢP LỆ (GIẢ MẠO)",
            "Biên lai này không khớp với biên lai đã phát hành.",
            "",
            series=series,
            number=number,
        )
    return _genuine(request, receipt)


def _genuine(request: web.Request, receipt: Receipt) -> web.Response:
    p = receipt.payload
    rows = [
        ("Số biên lai", f"{receipt.series}/{receipt.number}"),
        ("Số quyết định", p.get("decision_number", "")),
        ("Số tiền", format_amount_vnd(int(p.get("amount_vnd", 0)))),
        ("Người nộp", mask_name(str(p.get("violator_name", "")))),
        ("Biển số", mask_plate(str(p.get("plate", "")))),
        ("Đơn vị thu", p.get("issuing_unit", "")),
        ("Thời gian thu", format_vietnam_time(receipt.issued_at)),
    ]
    link = request.app[CITIZEN_LINKS].path(receipt.series, receipt.number, time.time())
    details = (
        "<dl>"
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
        + f'</dl>\n<p><a href="{html.escape(link)}">Tải biên lai (PDF)</a></p>'
    )
    return _page(
        200,
        "ok",
        "BIÊN LAI HỢP LỆ",
        "Biên lai này do hệ thống phát hành và chữ ký số hợp lệ. "
        "Hãy so sánh các thông tin dưới đây với biên lai giấy.",
        details,
        series=receipt.series,
        number=receipt.number,
    )


async def citizen_pdf(request: web.Request) -> web.Response:
    """The citizen's own PDF, by a signed link (``reconciler.citizen_links``)."""
    throttle(request, PUBLIC_LIMIT)
    series, number = series_number(request)
    exp, sig = request.query.get("exp", ""), request.query.get("sig", "")
    unknown = NotFoundError(f"no receipt {series}/{number}, or the link has expired")
    if not request.app[CITIZEN_LINKS].holds(series, number, exp, sig, time.time()):
        raise unknown
    async with request.app[ENGINE].connect() as conn:
        receipt = await get_receipt(conn, series, number)
    if receipt is None:
        raise unknown
    response = await pdf_response(request, receipt)
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/verify/{series}/{number}", verify_page)
    app.router.add_get("/receipts/{series}/{number}.pdf", citizen_pdf)
