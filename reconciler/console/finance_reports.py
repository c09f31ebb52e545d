"""The daily closing report's console page (``recon:read``): pick a day (up
to today), a unit and a bank; the table by unit and bank, the receipt
series with their first/last numbers and gaps, and links to the same report
as CSV and PDF; above them, a chart of the money collected and refunded
on each of the 14 days up to the chosen one (its figures also in a table).
The same queries and checks as ``GET /api/v1/reports/daily-closing`` and
``GET /api/v1/reports/daily-totals`` (``reconciler.api.reports``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from domain.business_time import business_date
from ledger.reports.daily_totals import DayTotal
from reconciler.api.errors import Handler
from reconciler.api.keys import SETTINGS
from reconciler.api.reports import closing_download, closing_report, totals_report
from reconciler.console.charts import paired_bars
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import format_dong, language, render
from reconciler.console.texts import TEXTS

CLOSING_PATH: Final = "/console/closing"


@staff_page("recon:read")
async def closing_page(request: web.Request, staff: Staff) -> web.Response:
    if not request.query.get("day"):
        # Yesterday's closing by default: the last whole day.
        yesterday = business_date(datetime.now(UTC)) - timedelta(days=1)
        query = {**request.query, "day": yesterday.isoformat()}
    else:
        query = dict(request.query)
    report = await closing_report(request.app, query, staff.principal.units)
    _, _, totals = await totals_report(
        request.app,
        {
            "until": report.day.isoformat(),
            "unit": query.get("unit", ""),
            "bank": query.get("bank", ""),
        },
        staff.principal.units,
    )
    kept = urlencode({k: v for k, v in query.items() if k in ("day", "unit", "bank") and v})
    return render(
        request,
        "finance/closing.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        report=report,
        unit=query.get("unit", ""),
        bank=query.get("bank", ""),
        banks=sorted(request.app[SETTINGS].banks),
        csv_url=f"{CLOSING_PATH}.csv?{kept}",
        pdf_url=f"{CLOSING_PATH}.pdf?{kept}",
        totals=totals,
        chart=_totals_chart(totals, TEXTS[language(request)]),
    )


def _totals_chart(totals: tuple[DayTotal, ...], texts: Mapping[str, str]) -> Markup:
    """Collected and refunded per day, the figures of the table under it."""
    first, last = totals[0].day, totals[-1].day
    return paired_bars(
        [(p.day.strftime("%d/%m"), p.collected_vnd, p.refunded_vnd) for p in totals],
        names=(texts["collected"], texts["refunded"]),
        title=texts["totals_chart_title"],
        desc=texts["totals_chart_desc"].format(first=f"{first:%d/%m/%Y}", last=f"{last:%d/%m/%Y}"),
        shown=format_dong,
    )


def _download(fmt: str) -> Handler:
    @staff_page("recon:read")
    async def download(request: web.Request, staff: Staff) -> web.Response:
        report = await closing_report(request.app, request.query, staff.principal.units)
        return await closing_download(report, fmt)

    return download


def add_routes(app: web.Application) -> None:
    app.router.add_get(CLOSING_PATH, closing_page)
    app.router.add_get(CLOSING_PATH + ".csv", _download("csv"))
    app.router.add_get(CLOSING_PATH + ".pdf", _download("pdf"))
