"""Reconciliation over the JSON API (finance: ``recon:read`` / ``recon:write``).

* ``POST /api/v1/reconciliations`` ``{bank, statement_date}`` → 202
  ``{reconciliation_id, ...}``: fetch that statement from the bank and
  reconcile it (a request while it runs joins the running one);
* ``POST /api/v1/statements?bank=&format=camt053|mt940|csv&statement_date=``
  with the file as the body → 202: reconcile an uploaded statement (a bad
  file: 400 naming the line or element, nothing stored);
* ``GET /api/v1/reconciliations`` (``bank``, ``statement_date``, paging) and
  ``GET /api/v1/reconciliations/{id}`` → ``{status, lines, matched, healed,
  duplicates, discrepancies, ...}``;
* ``GET /api/v1/reconciliations/{id}/lines`` (``class``, paging);
* ``GET /api/v1/reconciliations/{id}/report.csv`` and ``report.pdf``;
* ``GET /api/v1/discrepancies`` (``bank``, ``kind``, ``status``,
  ``reconciliation_id``, ``statement_date``; ``limit`` ≤ 500, ``cursor``) and
  ``GET /api/v1/discrepancies/{id}``, each with the actions it allows;
* ``POST /api/v1/discrepancies/{id}/actions`` ``{action, reason, ...}``
  (``reconciler.api.discrepancy_actions``);
* ``GET /api/v1/reconciliation-rules?bank=``: the matching rules in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import structlog
from aiohttp import web
from sqlalchemy import text

from bank_adapters.types import StatementFormat, StatementParseError
from domain.business_time import business_date
from ledger.core.checks import check_object
from ledger.core.errors import ValidationError
from ledger.reconciliation import discrepancies as disc
from ledger.reconciliation import followup as follow
from ledger.reconciliation import runs as recon
from ledger.reconciliation.matching import LINE_CLASSES
from ledger.reconciliation.report import csv_header, csv_rows, render_report_pdf
from ledger.reconciliation.rules import load_rules
from reconciler.api import discrepancy_actions
from reconciler.api.auth import require
from reconciler.api.bodies import read_body
from reconciler.api.errors import ApiError, read_json
from reconciler.api.keys import ENGINE, SAGA, SETTINGS, TEMPORAL
from reconciler.api.params import (
    cursor_after,
    cursor_before,
    page_limit,
    parse_date,
    path_id,
    query_optional_int,
)
from reconciler.api.recon_views import discrepancy_json, iso, run_json
from reconciler.api.views import json_response
from reconciler.recon_wiring import statement_limits
from workflows.reconciliation.client import (
    UploadOutcome,
    WorkflowServiceUnavailableError,
    import_statement,
    start_reconciliation,
)

log = structlog.get_logger(__name__)

PAGE_SIZE_MAX: Final = 500
RUNS_PAGE_SIZE_MAX: Final = 100
STATEMENT_AGE_DAYS_MAX: Final = 400
CSV_CHUNK_ROWS: Final = 5_000
_BODY_FIELDS: Final = frozenset({"bank", "statement_date"})


# --- JSON ----------------------------------------------------------------------


# --- parameters ------------------------------------------------------------------


def _bank(request: web.Request, value: object, field: str = "bank") -> str:
    banks = request.app[SETTINGS].banks
    if not isinstance(value, str) or value not in banks:
        raise ValidationError(field, f"must be one of: {', '.join(sorted(banks)) or '(none)'}")
    return value


def _statement_date(value: object, now: datetime, field: str = "statement_date") -> date:
    day = parse_date(value, field)
    today = business_date(now)
    if day > today:
        raise ValidationError(field, "is in the future (Vietnam time)")
    if day < today - timedelta(days=STATEMENT_AGE_DAYS_MAX):
        raise ValidationError(field, f"is more than {STATEMENT_AGE_DAYS_MAX} days ago")
    return day


async def _temporal(request: web.Request) -> Any:
    client = await request.app[TEMPORAL].client()
    if client is None:
        raise ApiError(503, "temporal_unavailable", "the workflow service is unavailable; retry")
    return client


# --- reconciliations ---------------------------------------------------------------


async def create_reconciliation(request: web.Request) -> web.Response:
    principal = require(request, "recon:write")
    body = await read_json(request)
    body = check_object(body, _BODY_FIELDS)
    run, started = await start_fetch(
        request, principal.actor, body.get("bank"), body.get("statement_date")
    )
    body_out = run_json(request.app[SETTINGS].public_base_url, run)
    return json_response({**body_out, "joined_running": not started}, status=202)


async def start_fetch(
    request: web.Request, actor: str, bank_value: object, day_value: object
) -> tuple[recon.Run, bool]:
    """Fetch a statement from the bank and reconcile it (the JSON API and
    the console's form): the run, and whether it was started now."""
    now = datetime.now(UTC)
    bank = _bank(request, bank_value)
    day = _statement_date(day_value, now)
    client = await _temporal(request)
    try:
        run, started = await start_reconciliation(
            client,
            request.app[ENGINE],
            request.app[SAGA],
            bank,
            day,
            trigger="api",
            requested_by=actor,
            now=now,
        )
    except WorkflowServiceUnavailableError as err:
        raise ApiError(503, "temporal_unavailable", str(err)) from err
    log.info("reconciliation.requested", reconciliation_id=run.id, bank=bank, started=started)
    return run, started


async def upload_statement(request: web.Request) -> web.Response:
    principal = require(request, "recon:write")
    data = await read_body(request)  # the route's cap: recon_upload_bytes_max
    outcome = await import_upload(request, principal.actor, request.query, data)
    return json_response(
        {
            **run_json(request.app[SETTINGS].public_base_url, outcome.run),
            "import_id": outcome.statement_import.id,
            "file_lines": outcome.lines,
            "content_sha256": outcome.statement_import.content_sha256,
            "already_imported": outcome.already_imported,
        },
        status=202,
    )


async def import_upload(
    request: web.Request, actor: str, fields: Mapping[str, str], data: bytes
) -> UploadOutcome:
    """Reconcile an uploaded statement (the JSON API and the console's
    upload form): ``fields`` name its bank, format and statement date."""
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    bank = _bank(request, fields.get("bank"))
    day = _statement_date(fields.get("statement_date"), now)
    try:
        fmt = StatementFormat(fields.get("format", ""))
    except ValueError:
        raise ValidationError("format", "must be camt053, mt940 or csv") from None
    if not data:
        raise ValidationError("body", "is empty; send the statement file as the body")
    client = await _temporal(request)
    try:
        return await import_statement(
            client,
            request.app[ENGINE],
            request.app[SAGA],
            bank=bank,
            statement_date=day,
            fmt=fmt,
            data=data,
            trigger="upload",
            requested_by=actor,
            limits=statement_limits(settings),
            now=now,
        )
    except StatementParseError as err:
        raise ApiError(400, "invalid_statement", str(err)) from err
    except WorkflowServiceUnavailableError as err:
        raise ApiError(503, "temporal_unavailable", str(err)) from err


async def live_run(request: web.Request, run_id: int) -> recon.Run:
    """The run; while it runs, with its totals so far."""
    async with request.app[ENGINE].connect() as conn:
        run = await recon.get_run(conn, run_id)
        if run.status == "running":
            counts = await follow.run_counts(conn, run)
            run = replace(run, counts=counts)
    return run


async def get_reconciliation(request: web.Request) -> web.Response:
    require(request, "recon:read")
    run = await live_run(request, path_id(request, "reconciliation_id"))
    return json_response(run_json(request.app[SETTINGS].public_base_url, run))


async def list_reconciliations(request: web.Request) -> web.Response:
    require(request, "recon:read")
    bank = request.query.get("bank") or None
    raw_day = request.query.get("statement_date")
    day = _statement_date(raw_day, datetime.now(UTC)) if raw_day else None
    limit = page_limit(request, RUNS_PAGE_SIZE_MAX)
    before = cursor_before(request)
    async with request.app[ENGINE].connect() as conn:
        runs = await recon.list_runs(
            conn, bank=bank, statement_date=day, before_id=before, limit=limit + 1
        )
    base = request.app[SETTINGS].public_base_url
    page = runs[:limit]
    return json_response(
        {
            "items": [run_json(base, r) for r in page],
            "next_cursor": str(page[-1].id) if len(runs) > limit else None,
        }
    )


_LINES_SQL: Final = """
SELECT l.id, l.bank_ref, l.booked_at, l.direction, l.amount_vnd, l.class, l.rule,
       l.payment_id, f.decision_number, l.counterparty, l.content, l.action,
       l.action_done_at, l.action_error, l.in_suspense, l.source_line
  FROM statement_lines l
  LEFT JOIN fines f ON f.id = l.fine_id
 WHERE l.bank = :bank AND l.statement_date = :day
   AND (CAST(:class AS text) IS NULL OR l.class = :class)
   AND l.id > :after
 ORDER BY l.id
 LIMIT :limit
"""


async def list_lines(request: web.Request) -> web.Response:
    require(request, "recon:read")
    items, next_cursor = await run_lines(request, path_id(request, "reconciliation_id"))
    return json_response({"items": items, "next_cursor": next_cursor})


async def run_lines(request: web.Request, run_id: int) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the run's lines (``class``, ``cursor``, ``limit`` from the
    query) and the next page's cursor."""
    line_class = request.query.get("class") or None
    if line_class is not None and line_class not in LINE_CLASSES:
        raise ValidationError("class", f"must be one of {', '.join(LINE_CLASSES)}")
    limit = page_limit(request, PAGE_SIZE_MAX)
    after = cursor_after(request)
    async with request.app[ENGINE].connect() as conn:
        run = await recon.get_run(conn, run_id)
        rows = (
            await conn.execute(
                text(_LINES_SQL),
                {
                    "bank": run.bank,
                    "day": run.statement_date,
                    "class": line_class,
                    "after": after,
                    "limit": limit + 1,
                },
            )
        ).all()
    items = [
        {
            "id": r.id,
            "bank_ref": r.bank_ref,
            "booked_at": iso(r.booked_at),
            "direction": r.direction,
            "amount_vnd": int(r.amount_vnd),
            "class": r._mapping["class"],
            "rule": r.rule,
            "payment_id": str(r.payment_id) if r.payment_id else None,
            "decision_number": r.decision_number,
            "counterparty": r.counterparty,
            "content": r.content,
            "action": r.action,
            "action_done_at": iso(r.action_done_at),
            "action_error": r.action_error,
            "in_suspense": r.in_suspense,
            "source_line": r.source_line,
        }
        for r in rows[:limit]
    ]
    return items, str(items[-1]["id"]) if len(rows) > limit else None


def _report_name(run: recon.Run, suffix: str) -> str:
    return f"doi-soat-{run.bank}-{run.statement_date:%Y%m%d}-{run.id}.{suffix}"


async def report_csv(request: web.Request) -> web.StreamResponse:
    require(request, "recon:read")
    run_id = path_id(request, "reconciliation_id")
    engine = request.app[ENGINE]
    limit = request.app[SETTINGS].recon_report_lines_max
    async with engine.connect() as conn:
        run = await recon.get_run(conn, run_id)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f"attachment; filename*=UTF-8''"
                f"{quote(_report_name(run, 'csv'))}",
            }
        )
        await response.prepare(request)
        await response.write(csv_header().encode())
        chunk: list[dict[str, Any]] = []
        async for row in follow.report_rows(conn, run.bank, run.statement_date, limit):
            chunk.append(row)
            if len(chunk) >= CSV_CHUNK_ROWS:
                await response.write(csv_rows(chunk).encode())
                chunk.clear()
        if chunk:
            await response.write(csv_rows(chunk).encode())
    await response.write_eof()
    return response


async def report_pdf(request: web.Request) -> web.Response:
    require(request, "recon:read")
    run_id = path_id(request, "reconciliation_id")
    async with request.app[ENGINE].connect() as conn:
        report = await follow.run_report(conn, run_id)
        if report.run.status == "running":
            counts = await follow.run_counts(conn, report.run)
            report = follow.RunReport(
                run=replace(report.run, counts=counts),
                by_class=report.by_class,
                by_discrepancy=report.by_discrepancy,
            )
        rows = await follow.discrepancy_rows(
            conn, report.run.bank, report.run.statement_date, limit=1_000
        )
    # PDF layout is CPU work (up to PDF_ROWS_MAX rows): off the event loop.
    pdf = await asyncio.to_thread(render_report_pdf, report, rows, generated_at=datetime.now(UTC))
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f"inline; filename*=UTF-8''"
            f"{quote(_report_name(report.run, 'pdf'))}"
        },
    )


# --- discrepancies -----------------------------------------------------------------


async def list_discrepancies(request: web.Request) -> web.Response:
    require(request, "recon:read")
    raw_day = request.query.get("statement_date")
    where = disc.DiscrepancyFilter(
        bank=request.query.get("bank") or None,
        kind=request.query.get("kind") or None,
        status=request.query.get("status") or None,
        reconciliation_id=query_optional_int(request, "reconciliation_id", 1, 10**18),
        statement_date=_statement_date(raw_day, datetime.now(UTC)) if raw_day else None,
    )
    limit = page_limit(request, PAGE_SIZE_MAX)
    before = cursor_before(request)
    async with request.app[ENGINE].connect() as conn:
        items, next_cursor = await disc.list_discrepancies(
            conn, where, limit=limit, before_id=before
        )
    return json_response(
        {
            "items": [discrepancy_json(d) for d in items],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
        }
    )


async def get_discrepancy(request: web.Request) -> web.Response:
    require(request, "recon:read")
    async with request.app[ENGINE].connect() as conn:
        item = await disc.get_discrepancy(conn, path_id(request, "discrepancy_id"))
    return json_response(discrepancy_json(item))


async def list_rules(request: web.Request) -> web.Response:
    require(request, "recon:read")
    bank = _bank(request, request.query.get("bank"))
    async with request.app[ENGINE].connect() as conn:
        rules = await load_rules(conn, bank)
    return json_response(
        {
            "bank": bank,
            "rules": [
                {
                    "rule": r.rule,
                    "priority": r.priority,
                    "enabled": r.enabled,
                    "amount_tolerance_vnd": r.amount_tolerance_vnd,
                    "truncated_chars_min": r.truncated_chars_min,
                    "description": r.description,
                    "defined_for": r.bank,
                }
                for r in sorted(rules.values(), key=lambda r: r.priority)
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/reconciliations", create_reconciliation)
    app.router.add_get("/api/v1/reconciliations", list_reconciliations)
    app.router.add_get("/api/v1/reconciliations/{reconciliation_id}", get_reconciliation)
    app.router.add_get("/api/v1/reconciliations/{reconciliation_id}/lines", list_lines)
    app.router.add_get("/api/v1/reconciliations/{reconciliation_id}/report.csv", report_csv)
    app.router.add_get("/api/v1/reconciliations/{reconciliation_id}/report.pdf", report_pdf)
    app.router.add_post("/api/v1/statements", upload_statement)
    app.router.add_get("/api/v1/discrepancies", list_discrepancies)
    app.router.add_get("/api/v1/discrepancies/{discrepancy_id}", get_discrepancy)
    app.router.add_post(
        "/api/v1/discrepancies/{discrepancy_id}/actions", discrepancy_actions.post_action
    )
    app.router.add_get("/api/v1/reconciliation-rules", list_rules)
