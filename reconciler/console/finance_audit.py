"""The audit log's console pages (``audit:read``), over the calls of
``GET /api/v1/audit`` and ``/api/v1/audit/verification``
(``reconciler.api.lists``):

* ``/console/audit``: search by actor, action, subject (type and id) and a
  range of business days, newest first, 50 a page (cursor);
* ``/console/audit/verification``: the whole hash chain recomputed now
  (every row; it takes a while on a long log, so it is its own page, asked
  for by a link) with the result in words and the first problems found.

A unit-scoped reader gets the 403 page: an audit row names no issuing
unit, so the log cannot be narrowed to theirs.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from reconciler.api.errors import ApiError
from reconciler.api.lists import audit_page, verify_chain
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import message_page, render

AUDIT_PATH: Final = "/console/audit"
AUDIT_PAGE: Final = "50"
SEARCH: Final = ("actor", "action", "subject_type", "subject_id", "from", "to")
PROBLEMS_SHOWN: Final = 20


@staff_page("audit:read")
async def audit_search(request: web.Request, staff: Staff) -> web.Response:
    if "limit" not in request.query:
        request = request.clone(rel_url=request.rel_url.update_query(limit=AUDIT_PAGE))
    try:
        rows, last = await audit_page(request, staff.principal)
    except ApiError as err:
        if err.status == 403:
            return message_page(request, 403, "forbidden_title", "audit_unit_scoped")
        raise
    next_url = None
    if last is not None:
        query = {k: v for k, v in request.query.items() if k in SEARCH and v}
        query["cursor"] = str(last)
        next_url = str(request.url.with_path(AUDIT_PATH).with_query(query).relative())
    return render(
        request,
        "finance/audit.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        rows=rows,
        chosen={k: request.query.get(k, "") for k in SEARCH},
        next_url=next_url,
    )


@staff_page("audit:read")
async def audit_verification(request: web.Request, staff: Staff) -> web.Response:
    if staff.principal.units:
        return message_page(request, 403, "forbidden_title", "audit_unit_scoped")
    report = await verify_chain(request)
    return render(
        request,
        "finance/audit_verification.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        report=report,
        problems=report.problems[:PROBLEMS_SHOWN],
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(AUDIT_PATH, audit_search)
    app.router.add_get(AUDIT_PATH + "/verification", audit_verification)
