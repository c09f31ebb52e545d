"""``POST /api/v1/discrepancies/{id}/actions`` ``{action, reason, ...}``.

* ``dismiss`` (finance): closes it at once, with the reason, in the audit log;
* ``request_refund`` (finance): asks for a second person's approval to send
  the money back to the payer (``payee_account`` defaults to the statement's
  counterparty); once approved, a workflow refunds it through the bank and
  takes it out of suspense;
* ``request_manual_match`` ``{decision_number}`` (finance): asks for approval
  to book the money as the payment of that fine (receipt, or refund if the
  fine turns out paid); once approved, a workflow does it.

The request is recorded (approval + audit) before anything moves; whoever
asks can never approve (``ledger.approvals``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import structlog
from aiohttp import web

from ledger import discrepancies as disc
from ledger.audit import append_audit
from ledger.errors import ValidationError
from reconciler.api.auth import require
from reconciler.api.errors import ApiError, read_json
from reconciler.api.keys import ENGINE
from reconciler.api.recon_views import discrepancy_json, path_id
from reconciler.api.views import json_response

log = structlog.get_logger(__name__)

ACTIONS: Final = ("dismiss", "request_refund", "request_manual_match")
_FIELDS: Final = frozenset({"action", "reason", "payee_account", "decision_number"})


def _body(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise ValidationError(unknown[0], "is not a known field")
    action = body.get("action")
    if action not in ACTIONS:
        raise ValidationError("action", f"must be one of {', '.join(ACTIONS)}")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason", "is required: say why")
    return body


async def dismiss(
    request: web.Request, discrepancy_id: int, actor: str, reason: str
) -> disc.Discrepancy:
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        item = await disc.close_discrepancy(conn, discrepancy_id, "dismissed", actor, reason, now)
        await append_audit(
            conn,
            actor=actor,
            action="discrepancy.dismissed",
            subject_type="discrepancy",
            subject_id=str(discrepancy_id),
            now=now,
            detail={
                "kind": item.kind,
                "bank": item.bank,
                "bank_ref": item.bank_ref,
                "amount_vnd": item.amount_vnd,
                "reason": reason.strip()[:2000],
            },
        )
    return item


async def post_action(request: web.Request) -> web.Response:
    principal = require(request, "recon:write")
    discrepancy_id = path_id(request, "discrepancy_id")
    body = _body(await read_json(request))
    if body["action"] == "dismiss":
        item = await dismiss(request, discrepancy_id, principal.name, body["reason"])
        log.info("discrepancy.dismissed", discrepancy_id=discrepancy_id, by=principal.name)
        return json_response({"discrepancy": discrepancy_json(item), "approval": None})
    item, approval = await request_action(request, discrepancy_id, principal.name, body)
    return json_response({"discrepancy": discrepancy_json(item), "approval": approval}, status=202)


async def request_action(
    request: web.Request, discrepancy_id: int, actor: str, body: dict[str, Any]
) -> tuple[disc.Discrepancy, dict[str, Any]]:
    raise ApiError(501, "not_implemented", "approval requests are not available yet")
