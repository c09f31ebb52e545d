"""Fines: register a decision, look it up (from the ledger alone)."""

from __future__ import annotations

from typing import Final

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
from reconciler.api.auth import check_unit, require
from reconciler.api.errors import read_json
from reconciler.api.keys import ENGINE, READER, SETTINGS
from reconciler.api.reads import driver_sql
from reconciler.api.views import fine_view_json, json_response

# The lookup is the API's hottest path (docs/benchmarks.md): it runs on the driver.
_FINE_VIEW_SQL: Final = driver_sql(FINE_VIEW_QUERY)


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


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/fines", create_fine)
    # ``.+``: a decision number holds a slash, sent encoded (%2F) or not.
    app.router.add_get("/api/v1/fines/{decision_number:.+}", get_fine)
