"""OpenAPI paths and schemas of finance's daily closing report
(``reconciler.api.reports``) and the discrepancy work queue
(``reconciler.api.discrepancy_queue``) (``reconciler.api.openapi``)."""

from __future__ import annotations

from typing import Any

from domain.money import AMOUNT_VND_MAX
from ledger.core.checks import REASON_CHARS_MAX
from ledger.reconciliation.discrepancies import DISCREPANCY_KINDS, DISCREPANCY_STATUSES
from ledger.reconciliation.work_queue import (
    AGE_DAYS_MAX,
    BANK_REF_CHARS_MAX,
    BULK_MAX,
    NAME_CHARS_MAX,
)
from ledger.reports.daily_closing import GAPS_SHOWN
from reconciler.api.discrepancy_queue import PAGE_MAX as QUEUE_PAGE_MAX
from reconciler.api.discrepancy_queue import STATUS_ALL
from reconciler.api.openapi_parts import (
    BOOL,
    COUNT,
    DATE,
    INT,
    MOMENT,
    NINT,
    NSTR,
    STR,
    Schema,
    array,
    cursor_before,
    json_body,
    limit,
    listing,
    nullable,
    obj,
    operation,
    path_id,
    query,
    ref,
)
from reconciler.api.params import ID_MAX
from reconciler.api.reports import FORMATS, UNIT_CHARS_MAX


def schemas() -> dict[str, Schema]:
    row = obj(
        {
            "issuing_unit": NSTR,
            "bank": NSTR,
            "collected_vnd": INT,
            "refunded_vnd": INT,
            "suspense_vnd": INT,
            "open_discrepancies": COUNT,
            "open_disputes": COUNT,
            "receipts": COUNT,
        }
    )
    series = obj(
        {
            "issuing_unit": STR,
            "series": STR,
            "issued": COUNT,
            "first_number": INT,
            "last_number": INT,
            "previous_last": NINT,
            "no_gaps": BOOL,
            "gaps_total": COUNT,
            "gaps": {**array(INT), "maxItems": GAPS_SHOWN},
        }
    )
    return {
        "ClosingRow": row,
        "DailyClosing": obj(
            {
                "day": DATE,
                "since": MOMENT,
                "until": MOMENT,
                "rows": array(ref("ClosingRow")),
                "total": ref("ClosingRow"),
                "series": array(series),
            }
        ),
        "QueueItem": {
            "allOf": [
                ref("Discrepancy"),
                obj(
                    {
                        "assignee": NSTR,
                        "assigned_at": nullable(MOMENT),
                        "age_seconds": COUNT,
                        "deadline": MOMENT,
                        "overdue": BOOL,
                    }
                ),
            ]
        },
    }


def _closing(banks: list[str]) -> dict[str, Any]:
    op = operation(
        "The daily closing report of a business day, per issuing unit and bank",
        "recon:read",
        {200: ("the report", ref("DailyClosing"))},
        tag="reports",
        params=(
            {
                "name": "day",
                "in": "query",
                "required": True,
                "schema": DATE,
                "description": "the business date (Asia/Ho_Chi_Minh), not after today",
            },
            query("unit", {"type": "string", "maxLength": UNIT_CHARS_MAX}, "only this unit's"),
            query("bank", {"enum": banks}, "only this bank's"),
            query("format", {"enum": list(FORMATS), "default": "json"}, "JSON, CSV or PDF"),
        ),
        description=(
            "Collected, refunded and held in suspense (integer đồng), the items still open "
            "at the day's end and the receipts issued; per series the first and last number "
            f"and the numbers missing (at most {GAPS_SHOWN} listed, all counted). Unit "
            "scoped: a unit-scoped reader sees only their units' rows and series. "
            "`format=csv` and `format=pdf` answer a file."
        ),
    )
    binary = {"schema": {"type": "string", "format": "binary"}}
    op["responses"]["200"]["content"].update({"text/csv": binary, "application/pdf": binary})
    return op


def _queue(banks: list[str]) -> dict[str, Any]:
    amount = {"type": "integer", "minimum": 0, "maximum": AMOUNT_VND_MAX}
    return listing(
        "The discrepancy work queue, newest first, with assignee, age and deadline",
        "recon:read",
        ("items", ref("QueueItem")),
        tag="reconciliation",
        params=(
            query("bank", {"enum": banks}, "only this bank's"),
            query("kind", {"enum": list(DISCREPANCY_KINDS)}, "only this kind"),
            query(
                "status",
                {"enum": [*DISCREPANCY_STATUSES, STATUS_ALL], "default": "open"},
                f"only this state ('{STATUS_ALL}': any)",
            ),
            query(
                "older_than_days",
                {"type": "integer", "minimum": 0, "maximum": AGE_DAYS_MAX},
                "only those raised at least this many days ago",
            ),
            query("amount_min", amount, "only those of at least this many đồng"),
            query("amount_max", amount, "only those of at most this many đồng; not below min"),
            query(
                "bank_ref",
                {"type": "string", "maxLength": BANK_REF_CHARS_MAX},
                "only this bank reference",
            ),
            query(
                "assignee", {"type": "string", "maxLength": NAME_CHARS_MAX}, "only this person's"
            ),
            cursor_before(),
            limit(QUEUE_PAGE_MAX),
        ),
        description=(
            "The deadline is `recon_approval_timeout_seconds` after the discrepancy was "
            "raised; `overdue` once an open one is past it."
        ),
    )


def paths(banks: list[str]) -> dict[str, dict[str, Any]]:
    """The daily closing report and the discrepancy work queue."""
    item_id = path_id("discrepancy_id", "discrepancy")
    assignment = {
        **obj(
            {
                "ids": {
                    **array({"type": "integer", "minimum": 1, "maximum": ID_MAX}),
                    "minItems": 1,
                },
                "assignee": nullable(
                    {"type": "string", "minLength": 1, "maxLength": NAME_CHARS_MAX}
                ),
            },
            ("assignee",),
        ),
        "additionalProperties": False,
    }
    note = {
        **obj({"note": {"type": "string", "minLength": 1, "maxLength": REASON_CHARS_MAX}}),
        "additionalProperties": False,
    }
    return {
        "/api/v1/reports/daily-closing": {"get": _closing(banks)},
        "/api/v1/discrepancy-queue": {"get": _queue(banks)},
        "/api/v1/discrepancy-queue/assign": {
            "post": operation(
                "Assign open discrepancies to a person, or to nobody (all or none; audited)",
                "recon:write",
                {200: ("how many changed hands", obj({"changed": COUNT}))},
                tag="reconciliation",
                body=json_body(assignment),
                errors=(404, 409),
                description=(
                    f"1 to {BULK_MAX} distinct ids. `assignee`: a staff user who may work "
                    "discrepancies (`recon:write`) and is not disabled; null or absent: "
                    "unassign. 404: an id names no discrepancy; 409: one is closed. Nothing "
                    "changes unless all can. Moves no money."
                ),
            )
        },
        "/api/v1/discrepancies/{discrepancy_id}/notes": {
            "post": operation(
                "A note on a discrepancy, kept as an audit entry",
                "recon:write",
                {201: ("the note's audit entry", ref("AuditEntry"))},
                tag="reconciliation",
                params=(item_id,),
                body=json_body(note),
                description="On an open or closed discrepancy; one line, trimmed.",
            )
        },
        "/api/v1/discrepancies/{discrepancy_id}/history": {
            "get": operation(
                "A discrepancy with its assignee and its audit entries, notes included",
                "recon:read",
                {
                    200: (
                        "the item and its history, oldest first",
                        obj({"item": ref("QueueItem"), "history": array(ref("AuditEntry"))}),
                    )
                },
                tag="reconciliation",
                params=(item_id,),
            )
        },
    }
