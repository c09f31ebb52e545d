"""Fines by the batch, amended and cancelled (``ledger.fines_admin``).

* ``POST /api/v1/fines/import`` (``fines:write``): the body is a CSV file
  (UTF-8, header ``decision_number,amount_vnd,violator_name,plate,
  issuing_unit,violation``, at most ``IMPORT_BYTES_MAX`` bytes and
  ``IMPORT_ROWS_MAX`` rows). Validated whole: any problem answers 422 with
  every error by line and column, and nothing is imported. Idempotent on
  the decision number: 201 ``{created, existing, sha256, message}`` when it
  registered fines, 200 with ``created: 0`` when they all were already.
  A unit-scoped importer may import only their units' fines.
* ``POST /api/v1/fines/{decision_number}/amend`` (``fines:amend``, a
  person): ``{amount_vnd?, due_date?, violator_name?, plate?, violation?,
  reason}``; 409 once the fine has a payment that is not declined, or is
  cancelled.
* ``POST /api/v1/fines/{decision_number}/cancel`` (``fines:amend``, a
  person): ``{reason}``; 409 when paid, in doubt, or already cancelled.

Another unit's fine is a 404, as a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ledger import fines_admin as fa
from ledger.core.checks import check_object, check_reason
from ledger.fines import fine_view, get_fine, missing_fine_message
from reconciler.api.auth import check_unit, require
from reconciler.api.bodies import read_body
from reconciler.api.errors import error_response, read_json
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.views import fine_view_json, json_response


def import_errors_response(err: fa.FineImportError) -> web.Response:
    errors = [{"line": e.line, "column": e.column, "message": e.message} for e in err.errors]
    return error_response(422, err.code, str(err), errors=errors)


async def run_import(request: web.Request, data: bytes) -> fa.ImportOutcome:
    """Check the whole file, then import it in one transaction (the JSON
    route and the console's upload page both come here)."""
    principal = require(request, "fines:write")
    settings = request.app[SETTINGS]
    lines = fa.parse_fines_csv(data, settings.max_amount_vnd, principal.units)
    async with request.app[ENGINE].begin() as conn:
        return await fa.import_fines(conn, data, lines, principal.actor, datetime.now(UTC))


async def import_fines(request: web.Request) -> web.Response:
    require(request, "fines:write")
    try:
        outcome = await run_import(request, await read_body(request))
    except fa.FineImportError as err:
        return import_errors_response(err)
    if outcome.created:
        message = f"{outcome.created} new fine(s) imported, {outcome.existing} already registered"
    else:
        message = f"nothing new: all {outcome.existing} fine(s) are already registered"
    body: dict[str, Any] = {
        "created": outcome.created,
        "existing": outcome.existing,
        "sha256": outcome.sha256,
        "message": message,
    }
    return json_response(body, status=201 if outcome.created else 200)


async def _scoped(request: web.Request, permission: str) -> tuple[str, str]:
    """(the decision number, the actor) of a write to a fine the caller may see."""
    principal = require(request, permission)
    number = request.match_info["decision_number"]
    async with request.app[ENGINE].connect() as conn:
        fine = await get_fine(conn, number)
    check_unit(principal, fine.issuing_unit, missing_fine_message(number))
    return number, principal.actor


async def amend(request: web.Request) -> web.Response:
    require(request, "fines:amend")
    changes = fa.amendment_from_json(await read_json(request), request.app[SETTINGS].max_amount_vnd)
    number, actor = await _scoped(request, "fines:amend")
    async with request.app[ENGINE].begin() as conn:
        await fa.amend_fine(conn, number, changes, actor, datetime.now(UTC))
        view = await fine_view(conn, number)
    return json_response(fine_view_json(request.app[SETTINGS].public_base_url, view))


async def cancel(request: web.Request) -> web.Response:
    require(request, "fines:amend")
    body = check_object(await read_json(request), ("reason",))
    reason = check_reason("reason", body.get("reason"), required=True)
    number, actor = await _scoped(request, "fines:amend")
    async with request.app[ENGINE].begin() as conn:
        fine = await fa.cancel_fine(conn, number, reason, actor, datetime.now(UTC))
    return json_response(
        {"decision_number": fine.decision_number, "cancelled": True, "reason": reason}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/fines/import", import_fines)
    app.router.add_post("/api/v1/fines/{decision_number:.+}/amend", amend)
    app.router.add_post("/api/v1/fines/{decision_number:.+}/cancel", cancel)
