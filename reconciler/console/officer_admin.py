"""Fines admin in the console (``ledger.fines_admin``, over what the JSON
routes of ``reconciler.api.fines_admin`` do):

* ``/console/fines/import`` (``fines:write``): upload a CSV file; any
  problem shows the table of errors by line and column and imports nothing;
  a file imported before says "nothing new".
* ``POST /console/fines/amend`` and ``/console/fines/cancel``
  (``fines:amend``, from the forms on a fine's counter page): done, back to
  the fine's page (303); refused, a page saying why, nothing changed.

The upload is ``multipart/form-data``, which ``staff_page`` does not read,
so ``import_upload`` makes the same checks itself, in the same order: the
session, the permission, then the CSRF token (a field of the form) before
the file is looked at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import fines_admin as fa
from ledger.access.sessions import csrf_token_matches
from ledger.core.errors import ConflictError, ValidationError
from ledger.fines import get_fine, missing_fine_message
from reconciler.api.auth import check_unit, may
from reconciler.api.fines_admin import run_import
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.console.pages import (
    LOGIN_PATH,
    Staff,
    current_session,
    see_other,
    staff_page,
)
from reconciler.console.render import language, message_page, read_form, render
from reconciler.console.texts import TEXTS

IMPORT_PATH: Final = "/console/fines/import"
_CSRF_BYTES_MAX: Final = 200


@staff_page("fines:write")
async def import_form(request: web.Request, staff: Staff) -> web.Response:
    return _import_page(request, staff.principal, staff.session.csrf_secret, 200)


def _import_page(
    request: web.Request, principal: Any, csrf: str, status: int, **shown: Any
) -> web.Response:
    context: dict[str, Any] = {"errors": None, "done": None, "problem": None, **shown}
    return render(
        request,
        "officer/fines_import.jinja",
        status=status,
        principal=principal,
        csrf=csrf,
        columns=",".join(fa.COLUMNS),
        **context,
    )


async def _upload(request: web.Request) -> tuple[str, bytes | None] | None:
    """(the CSRF field, the file) of the form; None when it is not one. A
    plain form (no file) gives its CSRF field and no file."""
    if request.content_type == "application/x-www-form-urlencoded":
        form = await read_form(request)
        return None if form is None else (form.get("csrf", ""), None)
    if request.content_type != "multipart/form-data":
        return None
    reader = await request.multipart()
    csrf, data = None, None
    for _ in range(3):  # the two fields; a third part is not this form
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            return None
        if part.name == "csrf" and csrf is None:
            raw = await part.read()
            if len(raw) > _CSRF_BYTES_MAX:
                return None
            csrf = raw.decode("utf-8", "replace")
        elif part.name == "file" and data is None:
            data = bytes(await part.read())
        else:
            return None
    return (csrf, data) if csrf is not None else None


async def import_upload(request: web.Request) -> web.Response:
    found = await current_session(request)
    if found is None:
        return see_other(LOGIN_PATH)
    principal, session = found
    if not may(principal, "fines:write"):
        return message_page(request, 403, "forbidden_title", "forbidden_message")
    try:
        upload = await _upload(request)
    except ValueError:  # broken framing
        upload = None
    if upload is None or not csrf_token_matches(session, upload[0]):
        return message_page(request, 403, "csrf_title", "csrf_message")
    if upload[1] is None:
        return message_page(request, 400, "bad_request_title", "bad_request_message")
    texts = TEXTS[language(request)]
    csrf = session.csrf_secret
    try:
        outcome = await run_import(request, upload[1])
    except fa.FineImportError as err:
        return _import_page(request, principal, csrf, 422, errors=err.errors)
    except ConflictError as err:
        return _import_page(request, principal, csrf, 409, problem=str(err))
    if outcome.created:
        done = texts["import_done"].format(created=outcome.created, existing=outcome.existing)
    else:
        done = texts["import_nothing_new"].format(existing=outcome.existing)
    return _import_page(request, principal, csrf, 200, done=done)


async def _scoped_number(request: web.Request, staff: Staff) -> str:
    """The form's decision number, of a fine the person may see (else the
    404 page, as a missing one)."""
    number = staff.form.get("decision_number", "")
    async with request.app[ENGINE].connect() as conn:
        fine = await get_fine(conn, number)
    check_unit(staff.principal, fine.issuing_unit, missing_fine_message(number))
    return number


def _back(number: str) -> web.Response:
    return see_other("/console/counter?q=" + quote(number, safe=""))


def _refused(request: web.Request, staff: Staff, status: int, message: str) -> web.Response:
    texts = TEXTS[language(request)]
    return render(
        request,
        "message.jinja",
        status=status,
        title=texts["fine_change_refused"],
        message=message,
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
    )


@staff_page("fines:amend")
async def amend(request: web.Request, staff: Staff) -> web.Response:
    form = staff.form
    body: dict[str, Any] = {"reason": form.get("reason", "")}
    for name in ("due_date", "violator_name", "plate", "violation"):
        if form.get(name, "").strip():
            body[name] = form[name]
    amount = form.get("amount_vnd", "").strip().replace(".", "")
    if amount:
        body["amount_vnd"] = int(amount) if amount.isascii() and amount.isdigit() else amount

    async def change(conn: AsyncConnection, number: str) -> None:
        changes = fa.amendment_from_json(body, request.app[SETTINGS].max_amount_vnd)
        await fa.amend_fine(conn, number, changes, staff.principal.actor, datetime.now(UTC))

    return await _change(request, staff, change)


@staff_page("fines:amend")
async def cancel(request: web.Request, staff: Staff) -> web.Response:
    reason = staff.form.get("reason", "").strip()

    async def change(conn: AsyncConnection, number: str) -> None:
        if not reason:
            raise ValidationError("reason", "is required: say why")
        await fa.cancel_fine(conn, number, reason, staff.principal.actor, datetime.now(UTC))

    return await _change(request, staff, change)


async def _change(
    request: web.Request,
    staff: Staff,
    change: Callable[[AsyncConnection, str], Awaitable[None]],
) -> web.Response:
    """``change`` the form's fine in one transaction: back to its page, or
    a page saying why not (nothing changed)."""
    try:
        number = await _scoped_number(request, staff)
        async with request.app[ENGINE].begin() as conn:
            await change(conn, number)
    except ValidationError as err:
        return _refused(request, staff, 400, str(err))
    except ConflictError as err:
        return _refused(request, staff, 409, str(err))
    return _back(number)


def add_routes(app: web.Application) -> None:
    app.router.add_get(IMPORT_PATH, import_form)
    app.router.add_post(IMPORT_PATH, import_upload)
    app.router.add_post("/console/fines/amend", amend)
    app.router.add_post("/console/fines/cancel", cancel)
