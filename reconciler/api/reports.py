"""``GET /api/v1/reports/daily-closing?day=YYYY-MM-DD&unit=&bank=&format=``
(``recon:read``): the daily closing report of a business day up to today
(``ledger.reports.daily_closing``) as JSON (the default), CSV or PDF.

``GET /api/v1/reports/daily-totals?until=YYYY-MM-DD&days=14&unit=&bank=``
(``recon:read``): collected and refunded per day for the ``days`` (1..31)
days ending with ``until`` (default today), the closing page's chart
(``ledger.reports.daily_totals``).

A unit-scoped reader sees only their units' rows and series (the scope is
applied in the query), never money no unit is known for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from domain.business_time import business_date
from ledger.core.checks import check_choice
from ledger.core.errors import ValidationError
from ledger.reports.daily_closing import ClosingRow, DailyClosing, SeriesRow, daily_closing
from ledger.reports.daily_closing_render import render_closing_csv, render_closing_pdf
from ledger.reports.daily_totals import DAYS_MAX, DayTotal, daily_totals
from reconciler.api.auth import require
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import parse_date, strict_query, whole_number
from reconciler.api.views import json_response

PATH: Final = "/api/v1/reports/daily-closing"
TOTALS_PATH: Final = "/api/v1/reports/daily-totals"
TOTALS_PARAMS: Final = frozenset({"until", "days", "unit", "bank"})
TOTALS_DAYS_DEFAULT: Final = 14
FORMATS: Final = ("json", "csv", "pdf")
UNIT_CHARS_MAX: Final = 200


def past_day(query: Mapping[str, str], name: str = "day") -> date:
    """``name``: a business date up to today (a future day has no closing)."""
    day = parse_date(query.get(name, ""), name)
    if day > business_date(datetime.now(UTC)):
        raise ValidationError(name, "must not be after today (Vietnam time)")
    return day


def closing_day(query: Mapping[str, str]) -> date:
    return past_day(query, "day")


def closing_filters(
    app: web.Application, query: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """``unit`` (an issuing unit's name, as registered) and ``bank``."""
    unit = query.get("unit") or None
    if unit is not None and len(unit) > UNIT_CHARS_MAX:
        raise ValidationError("unit", f"is longer than {UNIT_CHARS_MAX} characters")
    bank = query.get("bank") or None
    banks = app[SETTINGS].banks
    if bank is not None and bank not in banks:
        raise ValidationError("bank", f"must be one of: {', '.join(sorted(banks))}")
    return unit, bank


async def closing_report(
    app: web.Application, query: Mapping[str, str], units: tuple[str, ...]
) -> DailyClosing:
    """The report ``query`` asks for, within ``units`` (empty: every unit)."""
    day = closing_day(query)
    unit, bank = closing_filters(app, query)
    async with app[ENGINE].connect() as conn:
        return await daily_closing(conn, day, unit=unit, bank=bank, units=units or None)


def row_json(row: ClosingRow) -> dict[str, Any]:
    return {
        "issuing_unit": row.unit,
        "bank": row.bank,
        "collected_vnd": row.collected_vnd,
        "refunded_vnd": row.refunded_vnd,
        "suspense_vnd": row.suspense_vnd,
        "open_discrepancies": row.open_discrepancies,
        "open_disputes": row.open_disputes,
        "receipts": row.receipts,
    }


def series_json(row: SeriesRow) -> dict[str, Any]:
    return {
        "issuing_unit": row.unit,
        "series": row.series,
        "issued": row.issued,
        "first_number": row.first_number,
        "last_number": row.last_number,
        "previous_last": row.previous_last,
        "no_gaps": row.no_gaps,
        "gaps_total": row.gaps_total,
        "gaps": list(row.gaps),
    }


def closing_json(report: DailyClosing) -> dict[str, Any]:
    return {
        "day": report.day.isoformat(),
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "rows": [row_json(r) for r in report.rows],
        "total": row_json(report.total),
        "series": [series_json(s) for s in report.series],
    }


async def closing_download(report: DailyClosing, fmt: str) -> web.Response:
    """The report as a CSV or PDF file."""
    name = quote(f"bao-cao-cuoi-ngay-{report.day:%Y%m%d}.{fmt}")
    if fmt == "csv":
        return web.Response(
            text=render_closing_csv(report),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )
    # PDF layout is CPU work: off the event loop.
    pdf = await asyncio.to_thread(render_closing_pdf, report, generated_at=datetime.now(UTC))
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f"inline; filename*=UTF-8''{name}"},
    )


async def get_daily_closing(request: web.Request) -> web.Response:
    principal = require(request, "recon:read")
    fmt = request.query.get("format") or "json"
    check_choice("format", fmt, FORMATS)
    report = await closing_report(request.app, request.query, principal.units)
    if fmt == "json":
        return json_response(closing_json(report))
    return await closing_download(report, fmt)


async def totals_report(
    app: web.Application, query: Mapping[str, str], units: tuple[str, ...]
) -> tuple[date, int, tuple[DayTotal, ...]]:
    """(until, days, the points) ``query`` asks for, within ``units``."""
    until = past_day(query, "until") if query.get("until") else business_date(datetime.now(UTC))
    raw_days = query.get("days")
    days = whole_number(raw_days, "days", 1, DAYS_MAX) if raw_days else TOTALS_DAYS_DEFAULT
    unit, bank = closing_filters(app, query)
    async with app[ENGINE].connect() as conn:
        points = await daily_totals(conn, until, days, unit=unit, bank=bank, units=units or None)
    return until, days, points


async def get_daily_totals(request: web.Request) -> web.Response:
    principal = require(request, "recon:read")
    strict_query(request, TOTALS_PARAMS)
    until, days, points = await totals_report(request.app, request.query, principal.units)
    return json_response(
        {
            "until": until.isoformat(),
            "days": days,
            "points": [
                {
                    "day": p.day.isoformat(),
                    "collected_vnd": p.collected_vnd,
                    "refunded_vnd": p.refunded_vnd,
                }
                for p in points
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, get_daily_closing)
    app.router.add_get(TOTALS_PATH, get_daily_totals)
