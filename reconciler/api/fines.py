"""Fines: register a decision, look it up (from the ledger alone), find
fines by plate, violator name, status and unit (``GET /api/v1/fines``)."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ledger.fines import (
    FINE_VIEW_QUERY,
    FineInput,
    RegisterOutcome,
    fine_view,
    fine_view_from_rows,
    fine_view_params,
    missing_fine_message,
    register_fine,
)
from ledger.fines_search import SEARCH_LIMIT_MAX, FineRow, FineSearch, search_fines
from reconciler.api.auth import check_unit, require
from reconciler.api.errors import read_json
from reconciler.api.keys import ENGINE, READER, SETTINGS
from reconciler.api.params import ID_MAX, page_limit, query_optional_int, strict_query
from reconciler.api.reads import driver_sql
from reconciler.api.views import fine_view_json, json_response

# The lookup is the API's hottest path (docs/benchmarks.md): it runs on the driver.
_FINE_VIEW_SQL: Final = driver_sql(FINE_VIEW_QUERY)
SEARCH_PARAMS: Final = frozenset({"plate", "name", "status", "unit", "cursor", "limit"})


async def create_fine(request: web.Request) -> web.Response:
    require(request, "fines:write")
    settings = request.app[SETTINGS]
    fine_input = FineInput.from_json(await read_json(request), settings.max_amount_vnd)
    async with request.app[ENGINE].begin() as conn:
        _, outcome = await register_fine(conn, fine_input)
        view = await fine_view(conn, fine_input.decision_number)
    status = 201 if outcome is RegisterOutcome.CREATED else 200
    return json_response(fine_view_json(settings.public_base_url, view), status=status)


async def get_fine(request: web.Request) -> web.Response:
    principal = require(request, "fines:read")
    decision_number = request.match_info["decision_number"]
    rows = await request.app[READER].fetch(_FINE_VIEW_SQL, fine_view_params(decision_number))
    view = fine_view_from_rows(rows, decision_number)
    # Unit scope: one comparison after the read; another unit's fine is a 404.
    check_unit(principal, view.fine.issuing_unit, missing_fine_message(decision_number))
    return json_response(fine_view_json(request.app[SETTINGS].public_base_url, view))


def fine_row_json(row: FineRow) -> dict[str, Any]:
    return {
        "decision_number": row.decision_number,
        "amount_vnd": row.amount_vnd,
        "violator_name": row.violator_name,
        "plate": row.plate,
        "issuing_unit": row.issuing_unit,
        "violation": row.violation,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "cancelled_at": None if row.cancelled_at is None else row.cancelled_at.isoformat(),
    }


def fine_search(request: web.Request) -> FineSearch:
    """The search a query string asks for (``ValidationError`` naming the
    parameter); unknown parameters are refused, not ignored."""
    strict_query(request, SEARCH_PARAMS)
    query = request.query
    return FineSearch(
        plate=query.get("plate") or None,
        name=query.get("name") or None,
        status=query.get("status") or None,
        unit=query.get("unit") or None,
    )


async def find_fines(request: web.Request, search: FineSearch) -> tuple[list[FineRow], int | None]:
    """A page of the caller's search and the next page's cursor (None: the
    last page); shared by the JSON list and the counter page."""
    principal = require(request, "fines:read")
    limit = page_limit(request, SEARCH_LIMIT_MAX)
    after = query_optional_int(request, "cursor", 1, ID_MAX)
    rows = await request.app[READER].run(
        lambda conn: search_fines(conn, search, units=principal.units, after_id=after, limit=limit)
    )
    return rows, rows[-1].id if len(rows) == limit else None


async def list_fines(request: web.Request) -> web.Response:
    require(request, "fines:read")
    rows, last = await find_fines(request, fine_search(request))
    return json_response(
        {
            "fines": [fine_row_json(r) for r in rows],
            "next_cursor": None if last is None else str(last),
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/fines", list_fines)
    app.router.add_post("/api/v1/fines", create_fine)
    # ``.+``: a decision number holds a slash, sent encoded (%2F) or not.
    app.router.add_get("/api/v1/fines/{decision_number:.+}", get_fine)
