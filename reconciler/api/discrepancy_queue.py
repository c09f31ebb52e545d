"""The discrepancy work queue over the JSON API (``ledger.reconciliation.
work_queue``):

* ``GET /api/v1/discrepancy-queue`` (``recon:read``): discrepancies by
  ``bank``, ``kind``, ``status`` (``open`` unless told; ``all``),
  ``older_than_days``, ``amount_min``/``amount_max`` (đồng),
  ``bank_ref``, ``assignee``; newest first, ``cursor`` and ``limit``. Each
  with its assignee, age and deadline (``recon_approval_timeout_seconds``
  after it was raised), ``overdue`` once past it.
* ``POST /api/v1/discrepancy-queue/assign`` ``{ids, assignee}``
  (``recon:write``): give up to 100 open discrepancies to a person whose
  role may work them (``assignee`` null: to nobody), all or none, audited.
  The one bulk action: nothing that moves money is done in bulk.
* ``POST /api/v1/discrepancies/{id}/notes`` ``{note}`` (``recon:write``):
  a note, kept as an audit entry; ``GET /api/v1/discrepancies/{id}/history``
  (``recon:read``): the item and its audit entries, notes included.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from domain.money import AMOUNT_VND_MAX
from ledger.access.users import get_user
from ledger.core.checks import check_object
from ledger.core.errors import NotFoundError, ValidationError
from ledger.reconciliation import discrepancies as disc
from ledger.reconciliation import work_queue as wq
from reconciler.api.auth import PERMISSIONS, require
from reconciler.api.disputes import audit_json
from reconciler.api.errors import read_json
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import cursor_before, page_limit, path_id
from reconciler.api.recon_views import discrepancy_json, iso
from reconciler.api.views import json_response

QUEUE_PATH: Final = "/api/v1/discrepancy-queue"
PAGE_MAX: Final = 200
STATUS_ALL: Final = "all"


def queue_filter(app: web.Application, query: Mapping[str, str]) -> wq.QueueFilter:
    """The filters of a query string, each checked (400 naming it)."""
    bank = query.get("bank") or None
    if bank is not None and bank not in app[SETTINGS].banks:
        raise ValidationError("bank", f"must be one of: {', '.join(sorted(app[SETTINGS].banks))}")
    status = query.get("status") or "open"
    return wq.QueueFilter(
        bank=bank,
        kind=query.get("kind") or None,
        status=None if status == STATUS_ALL else status,
        older_than_days=_int(query, "older_than_days", wq.AGE_DAYS_MAX),
        amount_min=_int(query, "amount_min", AMOUNT_VND_MAX),
        amount_max=_int(query, "amount_max", AMOUNT_VND_MAX),
        bank_ref=query.get("bank_ref") or None,
        assignee=query.get("assignee") or None,
    )


def _int(query: Mapping[str, str], name: str, high: int) -> int | None:
    raw = query.get(name)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or int(raw) > high:
        raise ValidationError(name, f"must be a whole number in 0..{high}")
    return int(raw)


def deadline_of(app: web.Application, item: disc.Discrepancy) -> datetime:
    return item.created_at + timedelta(seconds=app[SETTINGS].recon_approval_timeout_seconds)


def queue_json(app: web.Application, entry: wq.QueueItem, now: datetime) -> dict[str, Any]:
    deadline = deadline_of(app, entry.item)
    return {
        **discrepancy_json(entry.item),
        "assignee": entry.assignee,
        "assigned_at": iso(entry.assigned_at),
        "age_seconds": max(0, int((now - entry.item.created_at).total_seconds())),
        "deadline": iso(deadline),
        "overdue": entry.item.open and now > deadline,
    }


async def list_queue(request: web.Request) -> web.Response:
    require(request, "recon:read")
    where = queue_filter(request.app, request.query)
    limit = page_limit(request, PAGE_MAX)
    now = datetime.now(UTC)
    async with request.app[ENGINE].connect() as conn:
        items, next_cursor = await wq.list_queue(
            conn, where, now, limit=limit, before_id=cursor_before(request)
        )
    return json_response(
        {
            "items": [queue_json(request.app, i, now) for i in items],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
        }
    )


async def check_assignee(request: web.Request, assignee: object) -> str | None:
    """A person who may work discrepancies (``recon:write``), not disabled;
    None to unassign."""
    if assignee is None:
        return None
    if not isinstance(assignee, str) or not 1 <= len(assignee) <= wq.NAME_CHARS_MAX:
        raise ValidationError("assignee", "must be a staff user's name, or null")
    try:
        async with request.app[ENGINE].connect() as conn:
            user = await get_user(conn, assignee)
    except NotFoundError:
        raise ValidationError("assignee", f"no staff user {assignee!r}") from None
    if user.disabled_at is not None or "recon:write" not in PERMISSIONS.get(user.role, ()):
        raise ValidationError("assignee", f"{assignee!r} may not work discrepancies")
    return user.username


async def assign_many(request: web.Request, actor: str, ids: object, assignee: object) -> int:
    """Assign (the JSON API and the console's forms); how many changed."""
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 < i < 10**18 for i in ids
    ):
        raise ValidationError("ids", "must be a list of discrepancy ids")
    who = await check_assignee(request, assignee)
    async with request.app[ENGINE].begin() as conn:
        return await wq.assign(conn, ids, who, actor, datetime.now(UTC))


async def assign(request: web.Request) -> web.Response:
    principal = require(request, "recon:write")
    body = check_object(await read_json(request), frozenset({"ids", "assignee"}))
    changed = await assign_many(request, principal.actor, body.get("ids"), body.get("assignee"))
    return json_response({"changed": changed})


async def add_note(request: web.Request) -> web.Response:
    principal = require(request, "recon:write")
    discrepancy_id = path_id(request, "discrepancy_id")
    body = check_object(await read_json(request), frozenset({"note"}))
    async with request.app[ENGINE].begin() as conn:
        entry = await wq.add_note(
            conn, discrepancy_id, body.get("note"), principal.actor, datetime.now(UTC)
        )
    return json_response(audit_json(entry), status=201)


async def history(request: web.Request) -> web.Response:
    require(request, "recon:read")
    discrepancy_id = path_id(request, "discrepancy_id")
    async with request.app[ENGINE].connect() as conn:
        entry = await wq.get_item(conn, discrepancy_id)
        trail = await wq.history(conn, discrepancy_id)
    return json_response(
        {
            "item": queue_json(request.app, entry, datetime.now(UTC)),
            "history": [audit_json(e) for e in trail],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(QUEUE_PATH, list_queue)
    app.router.add_post(QUEUE_PATH + "/assign", assign)
    app.router.add_post("/api/v1/discrepancies/{discrepancy_id}/notes", add_note)
    app.router.add_get("/api/v1/discrepancies/{discrepancy_id}/history", history)
