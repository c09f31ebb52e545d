"""The officer's pages besides the counter's lookup (``counter.py``):

* the counter's search by plate or violator name (``search_page``, called
  by the counter when its plate or name box is filled): a page of
  ``GET /api/v1/fines``, each fine linking to its counter page;
* ``/console/receipts/today``: today's receipts of the officer's unit(s), a
  page of ``GET /api/v1/receipts?issuing_unit=&day=``, with print and
  reprint as the counter has them;
* ``/console/disputes/new``: open a dispute for "I was debited but have no
  receipt", with the citizen's contact, over what ``POST /api/v1/disputes``
  does (``reconciler.api.disputes.open_dispute_as``).

Unit scope is the JSON API's, in SQL: another unit's fine or receipt is not
listed, whatever the query string says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from domain.business_time import business_date
from ledger import listings as ls
from ledger.core.errors import ValidationError
from ledger.fines_search import FineSearch
from reconciler.api.auth import may
from reconciler.api.fines import find_fines
from reconciler.api.keys import READER
from reconciler.api.params import cursor_before, page_limit
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import language, render
from reconciler.console.texts import TEXTS

RECEIPTS_PAGE: Final = 100


async def search_page(
    request: web.Request, context: dict[str, Any], plate: str, name: str
) -> web.Response:
    """The counter with the fines whose plate or name starts as typed."""
    texts = TEXTS[language(request)]
    try:
        rows, last = await find_fines(request, FineSearch(plate=plate or None, name=name or None))
    except ValidationError as err:
        field = texts["plate"] if err.field == "plate" else texts["violator"]
        error = texts["search_bad"].format(field=field)
        return render(request, "counter.jinja", status=400, **{**context, "error": error})
    more = None
    if last is not None:
        kept = [(k, v) for k, v in (("plate", plate), ("name", name)) if v]
        more = "/console/counter?" + urlencode([*kept, ("cursor", str(last))])
    return render(request, "counter.jinja", **{**context, "found": rows, "more": more})


@staff_page("receipts:read")
async def receipts_today(request: web.Request, staff: Staff) -> web.Response:
    """Today's receipts (business day, Asia/Ho_Chi_Minh) of the caller's
    units, newest first, in pages of ``RECEIPTS_PAGE``."""
    principal = staff.principal
    units = principal.units
    unit = request.query.get("unit") or (units[0] if len(units) == 1 else None)
    day = business_date(datetime.now(UTC))
    limit = page_limit(request, ls.LISTING_LIMIT_MAX, RECEIPTS_PAGE)
    before = cursor_before(request)
    rows = await request.app[READER].run(
        lambda conn: ls.list_receipts(
            conn,
            series=None,
            issuing_unit=unit,
            day=day,
            units=units,
            before_id=before,
            limit=limit,
        )
    )
    more = None
    if len(rows) == limit:
        kept = [("unit", unit)] if unit else []
        more = "/console/receipts/today?" + urlencode([*kept, ("cursor", str(rows[-1].id))])
    return render(
        request,
        "officer/receipts_today.jinja",
        principal=principal,
        csrf=staff.session.csrf_secret,
        unit=unit,
        day=day.strftime("%d/%m/%Y"),
        receipts=rows,
        more=more,
        may_reprint=may(principal, "receipts:reissue"),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/receipts/today", receipts_today)
