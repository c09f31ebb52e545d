"""The discrepancy work queue's console pages, over the calls of
``reconciler.api.discrepancy_queue``:

* ``/console/discrepancies`` (``recon:read``): the queue filtered by bank,
  kind, status, age, amount range, bank reference and assignee, with each
  item's age, deadline (overdue marked in words) and assignee; finance
  (``recon:write``) ticks items and gives them to a person at once (the
  one bulk action: nothing that moves money is done in bulk);
* ``/console/discrepancies/{id}``: one item, its history and notes, and
  forms to assign it and to add a note (an audit entry).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web

from domain.text import unsafe_character
from ledger.core.errors import ConflictError, ValidationError
from ledger.reconciliation import discrepancies as disc
from ledger.reconciliation import work_queue as wq
from reconciler.api.bodies import read_body
from reconciler.api.discrepancy_queue import assign_many, queue_filter, queue_json
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import cursor_before, path_id
from reconciler.console.finance import format_age
from reconciler.console.pages import Staff, see_other, staff_page
from reconciler.console.render import FORM_VALUE_CHARS_MAX, language, message_page, render

QUEUE_PATH: Final = "/console/discrepancies"
QUEUE_PAGE: Final = 50
FILTERS: Final = (
    "bank",
    "kind",
    "status",
    "older_than_days",
    "amount_min",
    "amount_max",
    "bank_ref",
    "assignee",
)


async def read_bulk_form(request: web.Request) -> dict[str, str] | None:
    """A form whose ``id`` field repeats (one per ticked item, at most
    ``BULK_MAX``): the ids joined by commas in ``ids``; every other field
    once, checked as ``read_form`` checks fields."""
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        text = (await read_body(request)).decode("utf-8")
        pairs = parse_qsl(text, max_num_fields=wq.BULK_MAX + 10, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    ids: list[str] = []
    for name, value in pairs:
        if len(value) > FORM_VALUE_CHARS_MAX or unsafe_character(name + value) is not None:
            return None
        if name == "id":
            ids.append(value)
        elif name in form or name == "ids":
            return None
        else:
            form[name] = value
    form["ids"] = ",".join(ids)
    return form


def _ids(raw: str) -> list[int]:
    parts = [p for p in raw.split(",") if p]
    if not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
        raise ValidationError("ids", "must be discrepancy ids")
    return [int(p) for p in parts]


@staff_page("recon:read")
async def queue_page(request: web.Request, staff: Staff) -> web.Response:
    where = queue_filter(request.app, request.query)
    now = datetime.now(UTC)
    async with request.app[ENGINE].connect() as conn:
        items, next_cursor = await wq.list_queue(
            conn, where, now, limit=QUEUE_PAGE, before_id=cursor_before(request)
        )
    next_url = None
    if next_cursor is not None:
        query = {k: v for k, v in request.query.items() if k in FILTERS and v}
        query["cursor"] = str(next_cursor)
        next_url = str(request.url.with_path(QUEUE_PATH).with_query(query).relative())
    lang = language(request)
    rows = [
        (queue_json(request.app, i, now), format_age(now - i.item.created_at, lang)) for i in items
    ]
    return render(
        request,
        "finance/queue.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        items=rows,
        chosen={k: request.query.get(k, "") for k in FILTERS},
        banks=sorted(request.app[SETTINGS].banks),
        kinds=disc.DISCREPANCY_KINDS,
        statuses=disc.DISCREPANCY_STATUSES,
        next_url=next_url,
        back=request.path_qs,
    )


def _back(staff: Staff, default: str) -> str:
    """Where to go after a form: the page it was on, if one of ours."""
    back = staff.form.get("back", "")
    return back if back.startswith(QUEUE_PATH) and "//" not in back else default


@staff_page("recon:write", read=read_bulk_form)
async def bulk_assign(request: web.Request, staff: Staff) -> web.Response:
    assignee = staff.form.get("assignee") or None
    try:
        await assign_many(request, staff.principal.actor, _ids(staff.form["ids"]), assignee)
    except ConflictError:
        return message_page(request, 409, "queue_closed_title", "queue_closed_message")
    return see_other(_back(staff, QUEUE_PATH))


@staff_page("recon:read")
async def item_page(request: web.Request, staff: Staff) -> web.Response:
    return await render_item(request, staff, path_id(request, "discrepancy_id"))


async def render_item(
    request: web.Request, staff: Staff, discrepancy_id: int, status: int = 200, **shown: Any
) -> web.Response:
    """One item's page; ``shown``: what an action on it did (``done``, the
    ``asked`` approval) or why it was refused (``error``)."""
    now = datetime.now(UTC)
    async with request.app[ENGINE].connect() as conn:
        entry = await wq.get_item(conn, discrepancy_id)
        trail = await wq.history(conn, discrepancy_id)
    return render(
        request,
        "finance/queue_item.jinja",
        status=status,
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        d=queue_json(request.app, entry, now),
        age=format_age(now - entry.item.created_at, language(request)),
        trail=trail,
        **{"error": None, "done": None, "asked": None, **shown},
    )


@staff_page("recon:write")
async def item_assign(request: web.Request, staff: Staff) -> web.Response:
    discrepancy_id = path_id(request, "discrepancy_id")
    assignee = staff.form.get("assignee") or None
    try:
        await assign_many(request, staff.principal.actor, [discrepancy_id], assignee)
    except ConflictError:
        return message_page(request, 409, "queue_closed_title", "queue_closed_message")
    return see_other(f"{QUEUE_PATH}/{discrepancy_id}")


@staff_page("recon:write")
async def item_note(request: web.Request, staff: Staff) -> web.Response:
    discrepancy_id = path_id(request, "discrepancy_id")
    async with request.app[ENGINE].begin() as conn:
        await wq.add_note(
            conn, discrepancy_id, staff.form.get("note"), staff.principal.actor, datetime.now(UTC)
        )
    return see_other(f"{QUEUE_PATH}/{discrepancy_id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get(QUEUE_PATH, queue_page)
    app.router.add_post(QUEUE_PATH + "/assign", bulk_assign)
    app.router.add_get(QUEUE_PATH + "/{discrepancy_id}", item_page)
    app.router.add_post(QUEUE_PATH + "/{discrepancy_id}/assign", item_assign)
    app.router.add_post(QUEUE_PATH + "/{discrepancy_id}/notes", item_note)
