"""Every finance page of the console, registered by one call
(``reconciler.console.add_routes``): approvals and disputes
(``finance``), the daily closing report (``finance_reports``),
reconciliation runs (``finance_recon``), the discrepancy work queue
(``finance_queue``), the single-item actions on a discrepancy or a
dispute (``finance_actions``) and the audit log (``finance_audit``)."""

from __future__ import annotations

from aiohttp import web

from reconciler.console import (
    finance,
    finance_actions,
    finance_audit,
    finance_queue,
    finance_recon,
    finance_reports,
)


def add_routes(app: web.Application) -> None:
    parts = (finance, finance_reports, finance_recon, finance_queue, finance_actions, finance_audit)
    for part in parts:
        part.add_routes(app)
