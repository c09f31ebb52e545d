"""The officer's counter: find a fine by its decision number (typed any
way: ``ledger.fines`` normalises it), or by plate or violator name (a list
of fines, ``reconciler.console.officer.search_page``), see its state in plain words
(``reconciler.console.explain``), print its receipt and reprint it (a
numbered copy, audited as the JSON reissue is).

Unit scope as in the JSON API: another unit's fine or receipt does not
exist for the caller (the same "not found" as a missing one).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ledger.core.errors import NotFoundError, ValidationError
from ledger.fines import FineView, fine_view
from ledger.outages import PostgresOutageStore
from observability.outages import Outage
from reconciler.api.auth import check_unit, may
from reconciler.api.keys import ENGINE, READER, SETTINGS
from reconciler.api.receipts import pdf_response, reissue_copy, scoped_receipt, series_number
from reconciler.console.explain import dispute_after, explain, in_doubt
from reconciler.console.officer import search_page
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import language, render
from reconciler.console.texts import TEXTS

SEARCH_CHARS_MAX = 200


@staff_page("fines:read")
async def counter(request: web.Request, staff: Staff) -> web.Response:
    typed = request.query.get("q", "").strip()[:SEARCH_CHARS_MAX]
    plate = request.query.get("plate", "").strip()[:SEARCH_CHARS_MAX]
    name = request.query.get("name", "").strip()[:SEARCH_CHARS_MAX]
    texts = TEXTS[language(request)]
    context: dict[str, Any] = {
        "principal": staff.principal,
        "csrf": staff.session.csrf_secret,
        "q": typed,
        "plate": plate,
        "name": name,
        "found": None,
        "more": None,
        "error": None,
        "view": None,
        "explanation": None,
        "may_print": may(staff.principal, "receipts:read"),
        "may_reprint": may(staff.principal, "receipts:reissue"),
    }
    if not typed and (plate or name):
        return await search_page(request, context, plate, name)
    if not typed:
        return render(request, "counter.jinja", **context)
    try:
        view = await request.app[READER].run(lambda conn: fine_view(conn, typed))
        check_unit(staff.principal, view.fine.issuing_unit, "")
    except ValidationError:
        return render(
            request, "counter.jinja", status=400, **{**context, "error": texts["bad_decision"]}
        )
    except NotFoundError:
        error = texts["fine_not_found"].format(number=typed)
        return render(request, "counter.jinja", status=404, **{**context, "error": error})
    explanation = explain(
        view, await _outages(request, view), language(request), dispute_after(request.app[SETTINGS])
    )
    return render(request, "counter.jinja", **{**context, "view": view, "explanation": explanation})


async def _outages(request: web.Request, view: FineView) -> list[Outage]:
    """The open outages, read only when a payment is in doubt."""
    if in_doubt(view) is None:
        return []
    return await PostgresOutageStore(request.app[ENGINE]).open_outages()


@staff_page("receipts:read")
async def print_receipt(request: web.Request, staff: Staff) -> web.Response:
    return await pdf_response(request, await scoped_receipt(request, staff.principal))


@staff_page("receipts:reissue")
async def reprint(request: web.Request, staff: Staff) -> web.Response:
    series, number = series_number(request)
    receipt = await reissue_copy(request, staff.principal, series, number)
    return await pdf_response(request, receipt)
