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

import re
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from domain.business_time import business_date
from domain.contact import ContactError, normal_email, normal_phone
from ledger import listings as ls
from ledger.core.errors import ConflictError, NotFoundError, ValidationError
from ledger.fines_search import FineSearch
from reconciler.api.auth import may
from reconciler.api.disputes import dispute_input, open_dispute_as
from reconciler.api.fines import find_fines
from reconciler.api.keys import READER, SETTINGS
from reconciler.api.params import cursor_before, page_limit
from reconciler.console import officer_admin
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import language, render
from reconciler.console.texts import TEXTS

RECEIPTS_PAGE: Final = 100
_WHEN_RE: Final = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2})", re.ASCII)
_DIGITS_RE: Final = re.compile(r"[0-9]{1,15}", re.ASCII)
DISPUTE_FIELDS: Final = (
    "decision_number",
    "bank",
    "amount_vnd",
    "occurred_at",
    "bank_ref",
    "phone",
    "email",
    "description",
)


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


def citizen_contact(phone: str, email: str) -> tuple[str | None, str | None]:
    """The citizen's phone number and email in their normal forms
    (``domain.contact``); at the counter at least one is needed.
    ``ValidationError`` names ``phone``, ``email`` or ``contact``."""
    try:
        number = normal_phone(phone) if phone.strip() else None
        address = normal_email(email) if email.strip() else None
    except ContactError as err:
        raise ValidationError(err.field, f"dispute_{err.field}_bad") from None
    if number is None and address is None:
        raise ValidationError("contact", "dispute_contact_missing")
    return number, address


def dispute_body(form: dict[str, str], untold: str) -> dict[str, Any]:
    """The ``POST /api/v1/disputes`` body of the console's form: the time
    typed in Vietnam time, the amount in digits (dots between thousands
    allowed), the citizen's contact in its own fields (never in the
    description, which the audit log keeps for good); ``untold``: the
    description when the officer wrote none."""
    phone, email = citizen_contact(form.get("phone", ""), form.get("email", ""))
    when = _WHEN_RE.fullmatch(form.get("occurred_at", "").strip())
    if when is None:
        raise ValidationError("occurred_at", "dispute_when_bad")
    amount = form.get("amount_vnd", "").strip().replace(".", "")
    body: dict[str, Any] = {
        "decision_number": form.get("decision_number", ""),
        "bank": form.get("bank", ""),
        "amount_vnd": int(amount) if _DIGITS_RE.fullmatch(amount) else amount,
        "occurred_at": f"{when[1]}T{when[2]}:00+07:00",
        "description": form.get("description", "").strip() or untold,
    }
    if phone is not None:
        body["contact_phone"] = phone
    if email is not None:
        body["contact_email"] = email
    if form.get("bank_ref", "").strip():
        body["bank_ref"] = form["bank_ref"].strip()
    return body


@staff_page("disputes:open")
async def dispute_form(request: web.Request, staff: Staff) -> web.Response:
    """The form, the decision number filled in from ``?decision=``."""
    values = {name: "" for name in DISPUTE_FIELDS}
    values["decision_number"] = request.query.get("decision", "")[:200]
    return _dispute_page(request, staff, values, 200, None, None)


@staff_page("disputes:open")
async def open_dispute(request: web.Request, staff: Staff) -> web.Response:
    """Open the dispute; a mistake shows the form again, as filled in,
    saying what and where, and nothing is recorded."""
    texts = TEXTS[language(request)]
    values = {name: staff.form.get(name, "")[:2000] for name in DISPUTE_FIELDS}
    try:
        body = dispute_body(staff.form, texts["dispute_untold"])
        opened = await open_dispute_as(request, staff.principal, dispute_input(request, body))
    except ValidationError as err:
        message = str(err).removeprefix(f"{err.field}: ")
        label = texts.get(f"dispute_field_{err.field}", err.field)
        error = texts["dispute_error"].format(field=label, message=texts.get(message, message))
        return _dispute_page(request, staff, values, 400, error, None)
    except NotFoundError:
        error = texts["fine_not_found"].format(number=values["decision_number"].strip())
        return _dispute_page(request, staff, values, 404, error, None)
    except ConflictError as err:
        error = texts["dispute_conflict"].format(message=str(err))
        return _dispute_page(request, staff, values, 409, error, None)
    done = texts["dispute_opened"].format(id=opened["id"])
    return _dispute_page(request, staff, dict.fromkeys(DISPUTE_FIELDS, ""), 201, None, done)


def _dispute_page(
    request: web.Request,
    staff: Staff,
    values: dict[str, str],
    status: int,
    error: str | None,
    done: str | None,
) -> web.Response:
    return render(
        request,
        "officer/dispute.jinja",
        status=status,
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        banks=sorted(request.app[SETTINGS].banks),
        values=values,
        error=error,
        done=done,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/receipts/today", receipts_today)
    app.router.add_get("/console/disputes/new", dispute_form)
    app.router.add_post("/console/disputes/new", open_dispute)
    officer_admin.add_routes(app)
