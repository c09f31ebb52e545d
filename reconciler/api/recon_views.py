"""JSON shapes of reconciliation runs and discrepancies, and the path id
parameter, shared by the reconciliation handlers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.reconciliation import discrepancies as disc
from ledger.reconciliation import runs as recon


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def run_json(base_url: str, run: recon.Run) -> dict[str, Any]:
    path = f"{base_url}/api/v1/reconciliations/{run.id}"
    return {
        "reconciliation_id": run.id,
        "bank": run.bank,
        "statement_date": run.statement_date.isoformat(),
        "source": run.source,
        "trigger": run.trigger,
        "requested_by": run.requested_by,
        "status": run.status,
        **run.counts,
        "error": run.error,
        "workflow_id": run.workflow_id,
        "import_id": run.import_id,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "report_csv_url": f"{path}/report.csv",
        "report_pdf_url": f"{path}/report.pdf",
    }


def allowed_actions(item: disc.Discrepancy) -> list[str]:
    """What finance may do with a discrepancy now."""
    if not item.open:
        return []
    actions = ["dismiss"]
    money_in = item.statement_line_id is not None and item.detail.get("direction") == "credit"
    if item.kind == "unconfirmed":
        # An uploaded line: the bank's statement confirms it (or a second
        # person matches it); it is never refunded on the file's word.
        return ["confirm_with_bank", *(["request_manual_match"] if money_in else []), *actions]
    if money_in and not item.detail.get("automatic_action"):
        actions.insert(0, "request_refund")
        if item.kind in ("unknown", "amount_mismatch", "duplicate"):
            actions.insert(1, "request_manual_match")
    return actions


def discrepancy_json(item: disc.Discrepancy) -> dict[str, Any]:
    return {
        "id": item.id,
        "reconciliation_id": item.reconciliation_id,
        "bank": item.bank,
        "statement_date": item.statement_date.isoformat(),
        "kind": item.kind,
        "status": item.status,
        "amount_vnd": item.amount_vnd,
        "bank_ref": item.bank_ref,
        "statement_line_id": item.statement_line_id,
        "line_class": item.line_class,
        "payment_id": str(item.payment_id) if item.payment_id else None,
        "decision_number": item.decision_number,
        "in_suspense": item.in_suspense,
        "detail": item.detail,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "resolved_at": iso(item.resolved_at),
        "resolved_by": item.resolved_by,
        "resolution": item.resolution,
        "actions": allowed_actions(item),
    }
