"""The citizen's status page, public: a decision number and the plate show
*đã nộp* / *đang xác minh* / *chưa nộp* with the officer's explanation
(``reconciler.console.explain``) and, once paid, the citizen's own signed
receipt link (``reconciler.citizen_links``). This is what stops a debited
citizen from paying twice.

What a stranger learns is bounded: a wrong plate, an unknown decision
number and one that cannot exist all answer the same page (404), after
the same single read; a right pair shows the state, the amount and the
bank of a payment in doubt, never the name, the unit or anything else;
each client address is rate limited (``reconciler.api.limits``, the public
pages' limiter). Plates compare by their letters and digits only, in
upper case: ``29a-123.45`` is ``29A12345``.
"""

from __future__ import annotations

import hmac
import time
from typing import Final

from aiohttp import web

from ledger.core.errors import NotFoundError, ValidationError
from ledger.fines import FineStatus, FineView, fine_view
from ledger.outages import PostgresOutageStore
from reconciler.api.keys import CITIZEN_LINKS, ENGINE, READER, SETTINGS
from reconciler.api.limits import throttle
from reconciler.api.problems import ApiError
from reconciler.api.public import PUBLIC_LIMIT
from reconciler.console.explain import dispute_after, explain, in_doubt
from reconciler.console.render import language, message_page, render

FIELD_CHARS_MAX: Final = 100
# Public: no caching, no indexing, no Referer carrying the decision number away.
_PUBLIC_HEADERS: Final = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


def plate_key(plate: str) -> str:
    return "".join(ch for ch in plate.upper() if ch.isalnum())


async def _matching(request: web.Request, decision: str, plate: str) -> FineView | None:
    """The fine of ``decision`` if its plate is ``plate``; else None, the
    same way whatever was wrong."""
    try:
        view = await request.app[READER].run(lambda conn: fine_view(conn, decision))
    except (ValidationError, NotFoundError):
        return None
    given, held = plate_key(plate), plate_key(view.fine.plate)
    if not given or not hmac.compare_digest(given.encode(), held.encode()):
        return None
    return view


async def status_page(request: web.Request) -> web.Response:
    try:
        throttle(request, PUBLIC_LIMIT)
    except ApiError as err:
        response = message_page(request, 429, "too_many_title", "too_many_message")
        response.headers.update(err.headers)
        return response
    decision = request.query.get("decision", "").strip()[:FIELD_CHARS_MAX]
    plate = request.query.get("plate", "").strip()[:FIELD_CHARS_MAX]
    context: dict[str, object] = {
        "decision": decision,
        "plate": plate,
        "error": None,
        "explanation": None,
        "view": None,
        "link": None,
        "principal": None,
    }
    if not decision and not plate:
        return _page(request, 200, context)
    if not decision or not plate:
        return _page(request, 400, {**context, "error": "citizen_missing"})
    view = await _matching(request, decision, plate)
    if view is None:
        return _page(request, 404, {**context, "error": "citizen_unknown"})
    store = PostgresOutageStore(request.app[ENGINE])
    outages = await store.open_outages() if in_doubt(view) else []
    link = None
    receipt = view.receipt
    if view.status == FineStatus.PAID and receipt is not None:
        link = request.app[CITIZEN_LINKS].path(receipt.series, receipt.number, time.time())
    explanation = explain(view, outages, language(request), dispute_after(request.app[SETTINGS]))
    return _page(request, 200, {**context, "view": view, "explanation": explanation, "link": link})


def _page(request: web.Request, status: int, context: dict[str, object]) -> web.Response:
    response = render(request, "status.jinja", status=status, **context)
    response.headers.update(_PUBLIC_HEADERS)
    return response
