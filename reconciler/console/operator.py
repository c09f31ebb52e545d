"""The operator's console pages (docs/console.md, "Operator"):

* ``/console/operator/links`` (``ops:read``): each bank up or down now,
  uptime over 24 h and 7 d, a 7-day outage timeline and the hourly count of
  payments in doubt (SVG charts with their data tables), and "wake a bank"
  (POST ``/console/operator/banks/{bank}/wake``, ``ops:write``: the
  link-recovery event, audited as ``POST /api/v1/banks/{bank}/link-recovered``);
* ``/console/operator/in-doubt`` (``payments:read``): the in-doubt queue
  with age, status checks and the bank's last answer, and "re-check now"
  (POST ``/console/operator/payments/{payment_id}/recheck``, ``ops:write``);
* ``/console/operator/alerts`` (``ops:read``): the alerts firing, as
  Alertmanager delivered them, each with its runbook section.

Each page reads what its JSON endpoint does (``reconciler.api.operator_views``,
``reconciler.api.alerts``), through the same functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from domain.business_time import VIETNAM_TZ
from ledger.core.errors import ForbiddenError, ValidationError
from ledger.link_health import WEEK, BankHealth
from ledger.ops_alerts import ReceivedAlert, list_alerts
from reconciler.api.auth import may
from reconciler.api.errors import ApiError
from reconciler.api.keys import READER, SETTINGS
from reconciler.api.operator_views import in_doubt_page, link_health, recheck_payment
from reconciler.api.params import path_uuid
from reconciler.api.payments import recover_link
from reconciler.console.charts import Lane, Span, bars, timeline
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import Lang, format_time, language, render
from reconciler.console.texts import TEXTS

ALERTS_SHOWN_MAX: Final = 200
# The console waits this long for a woken bank's recovery report before
# saying it runs (the API waits longer: a script can afford to).
WAKE_WAIT_SECONDS: Final = 3.0
RUNBOOK: Final = "docs/runbook.md"


def _context(staff: Staff, **more: Any) -> dict[str, Any]:
    return {"principal": staff.principal, "csrf": staff.session.csrf_secret, **more}


def _age(seconds: float, lang: Lang) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    units = ("ngày", "giờ", "phút") if lang == "vi" else ("d", "h", "min")
    parts = [f"{n} {u}" for n, u in zip((days, hours, minutes), units, strict=True) if n]
    return " ".join(parts[:2]) or ("dưới 1 phút" if lang == "vi" else "under 1 min")


def _percent(share: float) -> str:
    return f"{share * 100:.2f} %"


def _lanes(health: list[BankHealth], lang: Lang) -> list[Lane]:
    def label(start: datetime, end: datetime | None) -> str:
        until = format_time(end, lang) if end else TEXTS[lang]["outage_open"]
        return f"{format_time(start, lang)} → {until}"

    return [
        Lane(
            h.bank,
            tuple(
                Span(o.started_at, o.ended_at, label(o.started_at, o.ended_at))
                for o in h.outages_7d
            ),
        )
        for h in health
    ]


@staff_page("ops:read")
async def links(request: web.Request, staff: Staff) -> web.Response:
    lang = language(request)
    texts = TEXTS[lang]
    health, hourly = await link_health(request)
    now = datetime.now(UTC).astimezone(VIETNAM_TZ)  # the chart's ticks in Vietnam time
    points = [(p.at.astimezone(VIETNAM_TZ).strftime("%H:%M"), p.count) for p in hourly]
    return render(
        request,
        "operator/links.jinja",
        **_context(
            staff,
            health=health,
            hourly=hourly,
            percent=_percent,
            may_wake=may(staff.principal, "ops:write"),
            timeline=timeline(
                _lanes(health, lang),
                now - WEEK,
                now,
                title=texts["timeline_title"],
                desc=texts["timeline_desc"],
            ),
            chart=bars(
                points, title=texts["in_doubt_chart_title"], desc=texts["in_doubt_chart_desc"]
            ),
        ),
    )


@staff_page("ops:write")
async def wake(request: web.Request, staff: Staff) -> web.Response:
    bank = request.match_info["bank"]
    texts = TEXTS[language(request)]
    if bank not in request.app[SETTINGS].banks:
        raise ValidationError("bank", "no such bank")
    try:
        status, _ = await recover_link(request, staff.principal, bank, WAKE_WAIT_SECONDS)
    except ApiError as err:
        return _refused(request, staff, err.status, err.message)
    key = "wake_done" if status == 200 else "wake_started"
    return done_page(request, staff, texts[key].format(bank=bank), "/console/operator/links")


def done_page(
    request: web.Request, staff: Staff, message: str, back: str, status: int = 200
) -> web.Response:
    """What an action did (or, from 400 up, why it was refused), with a way back."""
    return render(
        request,
        "operator/done.jinja",
        status=status,
        **_context(staff, message=message, refused=status >= 400, back=back),
    )


def _refused(request: web.Request, staff: Staff, status: int, message: str) -> web.Response:
    return done_page(request, staff, message, request.path, status)


@staff_page("payments:read")
async def in_doubt(request: web.Request, staff: Staff) -> web.Response:
    lang = language(request)
    rows, cursor = await in_doubt_page(request, staff.principal)
    now = datetime.now(UTC)
    items = [
        {
            "row": r,
            "age": _age((now - (r.verifying_since or r.created_at)).total_seconds(), lang),
        }
        for r in rows
    ]
    return render(
        request,
        "operator/in_doubt.jinja",
        **_context(
            staff,
            items=items,
            cursor=cursor,
            banks=sorted(request.app[SETTINGS].banks),
            bank=request.query.get("bank", ""),
            may_recheck=may(staff.principal, "ops:write"),
        ),
    )


@staff_page("ops:write")
async def recheck(request: web.Request, staff: Staff) -> web.Response:
    payment_id = path_uuid(request, "payment_id", "a payment id")
    texts = TEXTS[language(request)]
    try:
        await recheck_payment(request, staff.principal, payment_id)
    except (ApiError, ForbiddenError) as err:
        status = err.status if isinstance(err, ApiError) else 403
        return _refused(request, staff, status, str(err))
    message = texts["recheck_done"].format(payment=payment_id)
    return done_page(request, staff, message, "/console/operator/in-doubt", 202)


def runbook_link(alert: ReceivedAlert) -> tuple[str, str | None]:
    """(the runbook section as text, a URL to link to or None). Only an
    http(s) ``runbook_url`` becomes a link: an annotation is the sender's
    text, and a ``javascript:`` URL must never be clickable."""
    section = f"{RUNBOOK}#{alert.alertname.lower()}"
    given = alert.annotations.get("runbook_url", "")
    parts = urlsplit(given)
    if parts.scheme in ("http", "https") and parts.netloc:
        return section, given
    return section, None


@staff_page("ops:read")
async def alerts(request: web.Request, staff: Staff) -> web.Response:
    rows = await request.app[READER].run(lambda conn: list_alerts(conn, "firing", ALERTS_SHOWN_MAX))
    items = [{"alert": a, "runbook": runbook_link(a)} for a in rows]
    return render(request, "operator/alerts.jinja", **_context(staff, items=items))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/operator/links", links)
    app.router.add_post("/console/operator/banks/{bank}/wake", wake)
    app.router.add_get("/console/operator/in-doubt", in_doubt)
    app.router.add_post("/console/operator/payments/{payment_id}/recheck", recheck)
    app.router.add_get("/console/operator/alerts", alerts)
