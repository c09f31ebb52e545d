"""OpenAPI paths and schemas of reconciliation, discrepancies, disputes and
approvals (``reconciler.api.openapi``)."""

from __future__ import annotations

from typing import Any

from domain.contact import EMAIL_CHARS_MAX, PHONE_CHARS_MAX
from ledger.core.approvals import APPROVAL_KINDS, APPROVAL_STATUSES
from ledger.disputes.record import ACTIONS as DISPUTE_ACTIONS
from ledger.disputes.record import DISPUTE_STATUSES
from ledger.reconciliation.discrepancies import DISCREPANCY_KINDS, DISCREPANCY_STATUSES
from ledger.reconciliation.runs import RUN_STATUSES
from ledger.reports.daily_totals import DAYS_MAX as TOTALS_DAYS_MAX
from reconciler.api.discrepancy_actions import ACTIONS as DISCREPANCY_ACTIONS
from reconciler.api.disputes import PAGE_SIZE_MAX as DISPUTES_PAGE_MAX
from reconciler.api.openapi_parts import (
    BOOL,
    DATE,
    INT,
    NINT,
    NOBJ,
    NSTR,
    OBJ,
    STR,
    Schema,
    after_id,
    array,
    cursor_after,
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
from reconciler.api.reconciliations import PAGE_SIZE_MAX, RUNS_PAGE_SIZE_MAX
from reconciler.api.reports import TOTALS_DAYS_DEFAULT, UNIT_CHARS_MAX

REASON: Schema = {"type": "string", "minLength": 1, "maxLength": 2000}


def schemas() -> dict[str, Schema]:
    return {
        "Run": obj(
            {
                "reconciliation_id": INT,
                "bank": STR,
                "statement_date": STR,
                "source": NSTR,
                "trigger": STR,
                "requested_by": NSTR,
                "status": {"enum": list(RUN_STATUSES)},
                "error": NSTR,
                "workflow_id": NSTR,
                "import_id": NINT,
                "started_at": NSTR,
                "finished_at": NSTR,
                "report_csv_url": STR,
                "report_pdf_url": STR,
            }
        ),
        "Discrepancy": obj(
            {
                "id": INT,
                "reconciliation_id": NINT,
                "bank": STR,
                "statement_date": STR,
                "kind": {"enum": list(DISCREPANCY_KINDS)},
                "status": {"enum": list(DISCREPANCY_STATUSES)},
                "amount_vnd": NINT,
                "bank_ref": NSTR,
                "statement_line_id": NINT,
                "line_class": NSTR,
                "payment_id": NSTR,
                "decision_number": NSTR,
                "in_suspense": BOOL,
                "detail": OBJ,
                "created_at": NSTR,
                "updated_at": NSTR,
                "resolved_at": NSTR,
                "resolved_by": NSTR,
                "resolution": NSTR,
                "actions": array({"enum": list(DISCREPANCY_ACTIONS)}),
            }
        ),
        "Dispute": obj(
            {
                "id": INT,
                "decision_number": STR,
                "bank": STR,
                "amount_vnd": INT,
                "fine_amount_vnd": NINT,
                "occurred_at": STR,
                "bank_ref": NSTR,
                "payer_account": NSTR,
                "description": STR,
                "contact_phone": NSTR,
                "contact_email": NSTR,
                "status": {"enum": list(DISPUTE_STATUSES)},
                "opened_by": STR,
                "opened_at": STR,
                "updated_at": STR,
                "approval_id": NINT,
                "resolution": NSTR,
                "resolution_reason": NSTR,
                "resolved_by": NSTR,
                "resolved_at": NSTR,
                "payment_id": NSTR,
                "result": NOBJ,
            }
        ),
        "DisputeWithEvidence": {
            "allOf": [
                ref("Dispute"),
                obj(
                    {
                        "evidence": obj(
                            {
                                "fine": OBJ,
                                "payments": array(ref("Payment")),
                                "debit_payment_id": NSTR,
                                "statement_lines": array(OBJ),
                                "bank": OBJ,
                            }
                        )
                    }
                ),
            ]
        },
        "Approval": obj(
            {
                "id": INT,
                "kind": {"enum": list(APPROVAL_KINDS)},
                "subject_type": STR,
                "subject_id": STR,
                "payload": OBJ,
                "reason": NSTR,
                "requested_by": STR,
                "requested_at": STR,
                "status": {"enum": list(APPROVAL_STATUSES)},
                "decided_by": NSTR,
                "decided_at": NSTR,
                "decision_reason": NSTR,
                "executed_at": NSTR,
                "result": NOBJ,
            }
        ),
    }


def _run_and(extra: dict[str, Schema]) -> Schema:
    return {"allOf": [ref("Run"), obj(extra)]}


def _statement_query(banks: list[str]) -> tuple[dict[str, Any], ...]:
    return (
        {
            "name": "bank",
            "in": "query",
            "required": True,
            "schema": {"enum": banks},
            "description": "whose statement",
        },
        {
            "name": "statement_date",
            "in": "query",
            "required": False,
            "schema": DATE,
            "description": "the statement's business date (default: yesterday)",
        },
        {
            "name": "format",
            "in": "query",
            "required": True,
            "schema": {"enum": ["camt053", "mt940", "csv"]},
            "description": "the file's format",
        },
    )


def _recon_paths(banks: list[str]) -> dict[str, dict[str, Any]]:
    run_id = path_id("reconciliation_id", "reconciliation")
    strict = {"additionalProperties": False}
    return {
        "/api/v1/reconciliations": {
            "post": operation(
                "Fetch the bank's statement and reconcile",
                "recon:write",
                {202: ("started, or joined the running one", _run_and({"joined_running": BOOL}))},
                tag="reconciliation",
                body=json_body(
                    {
                        **obj(
                            {"bank": {"enum": banks}, "statement_date": DATE}, ("statement_date",)
                        ),
                        **strict,
                    }
                ),
            ),
            "get": listing(
                "Reconciliation runs, newest first",
                "recon:read",
                ("items", ref("Run")),
                tag="reconciliation",
                params=(
                    query("bank", {"type": "string"}, "only this bank's"),
                    query("statement_date", DATE, "only this statement date"),
                    cursor_before(),
                    limit(RUNS_PAGE_SIZE_MAX),
                ),
            ),
        },
        "/api/v1/reconciliations/{reconciliation_id}": {
            "get": operation(
                "A run with its totals (so far, while it runs)",
                "recon:read",
                {200: ("the run", ref("Run"))},
                tag="reconciliation",
                params=(run_id,),
            )
        },
        "/api/v1/reconciliations/{reconciliation_id}/lines": {
            "get": listing(
                "A run's statement lines, in order",
                "recon:read",
                ("items", OBJ),
                tag="reconciliation",
                params=(
                    run_id,
                    query("class", {"type": "string"}, "only lines of this class"),
                    cursor_after(),
                    limit(PAGE_SIZE_MAX),
                ),
            )
        },
        "/api/v1/reconciliations/{reconciliation_id}/report.csv": {
            "get": operation(
                "A run's report as CSV",
                "recon:read",
                {200: ("the CSV", None)},
                tag="reconciliation",
                params=(run_id,),
                content_type="text/csv",
            )
        },
        "/api/v1/reconciliations/{reconciliation_id}/report.pdf": {
            "get": operation(
                "A run's report as PDF",
                "recon:read",
                {200: ("the PDF", None)},
                tag="reconciliation",
                params=(run_id,),
                content_type="application/pdf",
            )
        },
        "/api/v1/statements": {
            "post": operation(
                "Upload a statement file (a claim: moves no money)",
                "recon:write",
                {
                    202: (
                        "imported, reconciling",
                        _run_and({"file_lines": INT, "already_imported": BOOL}),
                    )
                },
                tag="reconciliation",
                params=_statement_query(banks),
                body={
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
            )
        },
        "/api/v1/reconciliation-rules": {
            "get": operation(
                "The matching rules of a bank",
                "recon:read",
                {200: ("the rules", obj({"bank": STR, "rules": array(OBJ)}))},
                tag="reconciliation",
                params=(
                    {
                        "name": "bank",
                        "in": "query",
                        "required": True,
                        "schema": {"enum": banks},
                        "description": "whose rules",
                    },
                ),
            )
        },
    }


def _discrepancy_paths(banks: list[str]) -> dict[str, dict[str, Any]]:
    item_id = path_id("discrepancy_id", "discrepancy")
    action_body = {
        **obj(
            {
                "action": {"enum": list(DISCREPANCY_ACTIONS)},
                "reason": REASON,
                "payee_account": {"type": "string"},
                "decision_number": {"type": "string"},
            },
            ("payee_account", "decision_number"),
        ),
        "additionalProperties": False,
    }
    acted = obj({"discrepancy": ref("Discrepancy"), "approval": nullable(ref("Approval"))})
    return {
        "/api/v1/discrepancies": {
            "get": listing(
                "The discrepancy queue, newest first",
                "recon:read",
                ("items", ref("Discrepancy")),
                tag="reconciliation",
                params=(
                    query("bank", {"type": "string"}, "only this bank's"),
                    query("kind", {"enum": list(DISCREPANCY_KINDS)}, "only this kind"),
                    query("status", {"enum": list(DISCREPANCY_STATUSES)}, "only this state"),
                    query(
                        "reconciliation_id",
                        {"type": "integer", "minimum": 1, "maximum": 10**18},
                        "only this run's",
                    ),
                    query("statement_date", DATE, "only this statement date"),
                    cursor_before(),
                    limit(PAGE_SIZE_MAX),
                ),
            )
        },
        "/api/v1/discrepancies/{discrepancy_id}": {
            "get": operation(
                "A discrepancy with the actions it allows",
                "recon:read",
                {200: ("the discrepancy", ref("Discrepancy"))},
                tag="reconciliation",
                params=(item_id,),
            )
        },
        "/api/v1/discrepancies/{discrepancy_id}/actions": {
            "post": operation(
                "Act on a discrepancy (money moves only after a second person's approval)",
                "recon:write",
                {
                    200: ("done (dismissed)", acted),
                    202: ("an approval requested, or the bank asked", acted),
                },
                tag="reconciliation",
                params=(item_id,),
                body=json_body(action_body),
                errors=(409,),
            )
        },
    }


def _dispute_paths(banks: list[str]) -> dict[str, dict[str, Any]]:
    dispute_id = path_id("dispute_id", "dispute")
    new_dispute = obj(
        {
            "decision_number": {"type": "string", "minLength": 1},
            "bank": {"enum": banks},
            "amount_vnd": {"type": "integer", "minimum": 1},
            "occurred_at": {"type": "string", "format": "date-time"},
            "bank_ref": {"type": "string"},
            "description": REASON,
            "payer_account": {"type": "string"},
            "contact_phone": {"type": "string", "maxLength": PHONE_CHARS_MAX},
            "contact_email": {"type": "string", "maxLength": EMAIL_CHARS_MAX},
        },
        (
            "bank_ref",
            "payer_account",
            "occurred_at",
            "amount_vnd",
            "contact_phone",
            "contact_email",
        ),
    )
    resolution = obj(
        {
            "action": {"enum": list(DISPUTE_ACTIONS)},
            "reason": REASON,
            "bank_ref": {"type": "string"},
            "payer_account": {"type": "string"},
        },
        ("bank_ref", "payer_account"),
    )
    resolved = obj({"dispute": ref("Dispute"), "approval": nullable(ref("Approval"))})
    return {
        "/api/v1/disputes": {
            "post": operation(
                "Open a dispute ('debited but no receipt')",
                "disputes:open",
                {201: ("opened, with the evidence gathered", ref("DisputeWithEvidence"))},
                tag="disputes",
                body=json_body({**new_dispute, "additionalProperties": False}),
                errors=(404, 409),
            ),
            "get": listing(
                "Disputes (unit scoped)",
                "disputes:read",
                ("disputes", ref("Dispute")),
                cursor="next_after_id",
                tag="disputes",
                params=(
                    query("status", {"enum": list(DISPUTE_STATUSES)}, "only this state"),
                    query("bank", {"type": "string"}, "only this bank's"),
                    query("decision_number", {"type": "string"}, "only this fine's"),
                    after_id(),
                    limit(DISPUTES_PAGE_MAX),
                ),
            ),
        },
        "/api/v1/disputes/{dispute_id}": {
            "get": operation(
                "A dispute with its evidence as last gathered, approvals and history",
                "disputes:read",
                {200: ("the dispute", ref("DisputeWithEvidence"))},
                tag="disputes",
                params=(dispute_id,),
            )
        },
        "/api/v1/disputes/{dispute_id}/evidence/refresh": {
            "post": operation(
                "Ask the bank now and keep its answers",
                "disputes:open",
                {200: ("the dispute with fresh evidence", ref("DisputeWithEvidence"))},
                tag="disputes",
                params=(dispute_id,),
            )
        },
        "/api/v1/disputes/{dispute_id}/resolutions": {
            "post": operation(
                "Resolve a dispute (confirm or refund: after a second person's approval)",
                "disputes:resolve",
                {
                    200: ("resolved (rejected)", resolved),
                    202: ("an approval requested", resolved),
                },
                tag="disputes",
                params=(dispute_id,),
                body=json_body({**resolution, "additionalProperties": False}),
                errors=(409,),
            )
        },
        **_approval_paths(),
    }


def _approval_paths() -> dict[str, dict[str, Any]]:
    approval_id = path_id("approval_id", "approval")
    decision = json_body(
        {**obj({"reason": REASON}, ("reason",)), "additionalProperties": False},
        "a reason (required to reject)",
    )
    decided = {"allOf": [ref("Approval"), obj({"workflow_signalled": BOOL})]}
    decide = {
        verb: operation(
            f"{verb.capitalize()} a request (never one's own)",
            "approvals:decide",
            {200: ("decided", decided)},
            tag="approvals",
            params=(approval_id,),
            body=decision,
            errors=(409,),
        )
        for verb in ("approve", "reject")
    }
    return {
        "/api/v1/approvals": {
            "get": listing(
                "Approvals (maker-checker)",
                "approvals:read",
                ("approvals", ref("Approval")),
                cursor="next_after_id",
                tag="approvals",
                params=(
                    query("status", {"enum": list(APPROVAL_STATUSES)}, "only this state"),
                    query("kind", {"enum": list(APPROVAL_KINDS)}, "only this kind"),
                    query("subject_type", {"type": "string"}, "only about this kind of thing"),
                    query("subject_id", {"type": "string"}, "only about this one"),
                    after_id(),
                    limit(DISPUTES_PAGE_MAX),
                ),
            )
        },
        "/api/v1/approvals/{approval_id}": {
            "get": operation(
                "An approval",
                "approvals:read",
                {200: ("the approval", ref("Approval"))},
                tag="approvals",
                params=(approval_id,),
            )
        },
        "/api/v1/approvals/{approval_id}/approve": {"post": decide["approve"]},
        "/api/v1/approvals/{approval_id}/reject": {"post": decide["reject"]},
    }


def _report_paths(banks: list[str]) -> dict[str, dict[str, Any]]:
    point = obj({"day": DATE, "collected_vnd": INT, "refunded_vnd": INT})
    totals = obj({"until": DATE, "days": INT, "points": array(point)})
    return {
        "/api/v1/reports/daily-totals": {
            "get": operation(
                "Collected and refunded per business day (the closing page's chart)",
                "recon:read",
                {200: ("one point per day, oldest first", totals)},
                tag="reports",
                params=(
                    query("until", DATE, "the last day, up to today (default: today)"),
                    query(
                        "days",
                        {"type": "integer", "minimum": 1, "maximum": TOTALS_DAYS_MAX},
                        f"how many days up to until (default {TOTALS_DAYS_DEFAULT})",
                    ),
                    query("unit", {"type": "string", "maxLength": UNIT_CHARS_MAX}, "one unit"),
                    query("bank", {"enum": banks}, "one bank"),
                ),
            )
        }
    }


def paths(banks: list[str]) -> dict[str, dict[str, Any]]:
    """Reconciliation, discrepancies, disputes, approvals and reports."""
    return {
        **_recon_paths(banks),
        **_discrepancy_paths(banks),
        **_dispute_paths(banks),
        **_report_paths(banks),
    }
