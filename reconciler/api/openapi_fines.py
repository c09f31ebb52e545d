"""OpenAPI paths and schemas of the officer's fines routes: the search
(``GET /api/v1/fines``, ``reconciler.api.fines``), the CSV import, amend
and cancel (``reconciler.api.fines_admin``) (``reconciler.api.openapi``)."""

from __future__ import annotations

from typing import Any

from ledger.core.checks import REASON_CHARS_MAX
from ledger.fines import FINE_STATUSES, TEXT_FIELD_MAX_CHARS
from ledger.fines_admin import (
    AMEND_FIELDS,
    COLUMNS,
    IMPORT_BYTES_MAX,
    IMPORT_ERRORS_MAX,
    IMPORT_ROWS_MAX,
)
from ledger.fines_search import SEARCH_CHARS_MAX, SEARCH_LIMIT_MAX
from reconciler.api.openapi_parts import (
    DATE,
    INT,
    MOMENT,
    STR,
    Schema,
    array,
    decision_path,
    json_body,
    limit,
    listing,
    nullable,
    obj,
    operation,
    query,
    ref,
)
from reconciler.api.params import ID_MAX

_REASON: Schema = {"type": "string", "minLength": 1, "maxLength": REASON_CHARS_MAX}
_TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": TEXT_FIELD_MAX_CHARS}
_SEARCH: Schema = {"type": "string", "maxLength": SEARCH_CHARS_MAX}


def schemas() -> dict[str, Schema]:
    return {
        "FineRow": obj(
            {
                "decision_number": STR,
                "amount_vnd": INT,
                "violator_name": STR,
                "plate": STR,
                "issuing_unit": STR,
                "violation": STR,
                "status": {"enum": list(FINE_STATUSES)},
                "created_at": MOMENT,
                "cancelled_at": nullable(MOMENT),
            }
        )
    }


def _search() -> dict[str, Any]:
    return listing(
        "Find fines by plate, violator name, status and unit (unit scoped)",
        "fines:read",
        ("fines", ref("FineRow")),
        tag="fines",
        params=(
            query("plate", _SEARCH, "a prefix of the plate, typed any way (51f-123.45)"),
            query("name", _SEARCH, "a prefix of the violator's name, case and marks ignored"),
            query("status", {"enum": list(FINE_STATUSES)}, "only fines in this state"),
            query("unit", _SEARCH, "only this issuing unit's"),
            query(
                "cursor",
                {"type": "integer", "minimum": 1, "maximum": ID_MAX},
                "the previous page's next_cursor: list after that fine",
            ),
            limit(SEARCH_LIMIT_MAX),
        ),
        description=(
            "In plate order when a plate is given, else in name order when a name is, "
            "else oldest first. A plate or name with no letter or digit, and any query "
            "parameter not listed here or given twice, is a 400. A unit-scoped caller "
            "finds only their units' fines."
        ),
    )


def _import() -> dict[str, Any]:
    done = obj({"created": INT, "existing": INT, "sha256": STR, "message": STR})
    op = operation(
        "Register fines from a CSV file, validated whole (audited)",
        "fines:write",
        {
            201: ("new fines registered (the others already were)", done),
            200: ("nothing new: every fine was already registered", done),
        },
        tag="fines",
        body={
            "required": True,
            "description": (
                f"UTF-8 CSV with the header `{','.join(COLUMNS)}`, at most "
                f"{IMPORT_BYTES_MAX} bytes and {IMPORT_ROWS_MAX} rows"
            ),
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        },
        errors=(409, 422),
        description=(
            "Idempotent on the decision number: a fine already registered with the same "
            "data counts as existing. A unit-scoped importer may import only their units' "
            "fines. 422: the file has problems, every one listed by line and column (the "
            f"first {IMPORT_ERRORS_MAX}), and nothing was imported; 409: another import "
            "registered some of these fines meanwhile (retry)."
        ),
    )
    problem = obj({"line": INT, "column": STR, "message": STR})
    refused = obj({"error": obj({"code": STR, "message": STR, "errors": array(problem)})})
    op["responses"]["422"] = {
        "description": "the file is refused, nothing imported (line 0: the file as a whole)",
        "content": {"application/json": {"schema": refused}},
    }
    return op


def paths(max_amount_vnd: int) -> dict[str, dict[str, Any]]:
    """The fines search, import, amend and cancel."""
    amount = {"type": "integer", "minimum": 1, "maximum": max_amount_vnd}
    kinds = {"amount_vnd": amount, "due_date": DATE}
    changes = {name: kinds.get(name, _TEXT) for name in AMEND_FIELDS}
    amendment = {
        **obj({**changes, "reason": _REASON}, tuple(AMEND_FIELDS)),
        "additionalProperties": False,
        "minProperties": 2,
    }
    cancelled = obj({"decision_number": STR, "cancelled": {"const": True}, "reason": STR})
    a_person = (
        "A person's decision: a service account holding the role gets 403. Another "
        "unit's fine is a 404, as a missing one."
    )
    return {
        "/api/v1/fines": {"get": _search()},
        "/api/v1/fines/import": {"post": _import()},
        "/api/v1/fines/{decision_number}/amend": {
            "post": operation(
                "Amend a fine: amount, due date, violator details (audited)",
                "fines:amend",
                {200: ("the fine as amended", ref("FineView"))},
                tag="fines",
                params=(decision_path(),),
                body=json_body(amendment, f"at least one of {', '.join(AMEND_FIELDS)}; a reason"),
                errors=(409,),
                description=(
                    f"{a_person} 409: the fine is cancelled, or has a payment that is not "
                    "declined (money may be moving for the old amount)."
                ),
            )
        },
        "/api/v1/fines/{decision_number}/cancel": {
            "post": operation(
                "Cancel a fine, with a reason (audited); it can no longer be paid",
                "fines:amend",
                {200: ("cancelled", cancelled)},
                tag="fines",
                params=(decision_path(),),
                body=json_body({**obj({"reason": _REASON}), "additionalProperties": False}, "why"),
                errors=(409,),
                description=(
                    f"{a_person} 409: the fine is paid, has a payment in doubt, or is "
                    "already cancelled."
                ),
            )
        },
    }
