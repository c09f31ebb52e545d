"""The reconciliation pages of the console (``recon:read``; starting a fetch
and uploading a statement: ``recon:write``), over the same calls as the JSON
API (``reconciler.api.reconciliations``):

* ``/console/reconciliations``: the runs, newest first (cursor paged), a
  form to fetch a statement from a bank and one to upload a statement file
  (a plain file input; ``static/finance-upload.js`` adds drag and drop);
* ``/console/reconciliations/{id}``: the run's totals and its lines (paged
  by cursor, by class), links to the CSV and PDF report; while the run
  works the page reloads itself every few seconds (meta refresh), so its
  progress shows without a script.

The upload form is ``multipart/form-data``: its body is capped as the API's
upload is (``recon_upload_bytes_max``, plus the form's framing), read
whole, then split (``read_upload``); the file is kept on the request for
the handler and the text fields (CSRF token first) checked as every form's.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from importlib.resources import files
from typing import Final

from aiohttp import web

from ledger.core.errors import ValidationError
from ledger.reconciliation import runs as recon
from ledger.reconciliation.matching import LINE_CLASSES
from reconciler.api.bodies import read_body
from reconciler.api.errors import ApiError
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import cursor_before, path_id
from reconciler.api.reconciliations import (
    import_upload,
    live_run,
    report_csv,
    report_pdf,
    run_lines,
    start_fetch,
)
from reconciler.console.finance import query_bank
from reconciler.console.pages import Staff, see_other, staff_page
from reconciler.console.render import language, message_page, read_form, render
from reconciler.console.texts import TEXTS

RUNS_PATH: Final = "/console/reconciliations"
UPLOAD_PATH: Final = RUNS_PATH + "/upload"
SCRIPT_PATH: Final = "/console/static/finance-upload.js"
RUNS_PAGE: Final = 25
LINES_PAGE: Final = "100"
REFRESH_SECONDS: Final = 3
# The multipart framing and the form's few text fields around the file.
UPLOAD_FRAMING_BYTES: Final = 64 * 1024
FILE_FIELD: Final = "statement"
_UPLOAD: Final = web.RequestKey("finance_upload", bytes)
_SCRIPT: Final = files("reconciler.console").joinpath("static", "finance-upload.js").read_bytes()


async def read_upload(request: web.Request) -> dict[str, str] | None:
    """The upload form's text fields, its file kept on the request; None
    when the body is not such a form (the page then refuses it, 403). A
    plain form is read as one (no file: the page answers 400)."""
    if request.content_type == "application/x-www-form-urlencoded":
        return await read_form(request)
    if request.content_type != "multipart/form-data":
        return None
    body = await read_body(request)  # the route's cap (``upload_body_rule``)
    header = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not message.is_multipart():
        return None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes) or name in fields:
            return None
        if name == FILE_FIELD:
            request[_UPLOAD] = payload
            fields[name] = ""
            continue
        try:
            fields[name] = payload.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if len(fields[name]) > 200:
            return None
    return fields


def _unavailable(request: web.Request, err: ApiError) -> web.Response:
    """A refusal of the API's own checks, as a page."""
    if err.status == 503:
        return message_page(request, 503, "recon_unavailable_title", "recon_unavailable_message")
    if err.status == 413:
        return message_page(request, 413, "upload_too_large_title", "upload_too_large_message")
    texts = TEXTS[language(request)]
    # The API's message names what is wrong (a statement's line or element).
    return render(
        request,
        "message.jinja",
        status=err.status if 400 <= err.status < 500 else 400,
        title=texts["statement_refused_title"],
        message=f"{texts['bad_request_message']} {err.message}",
        principal=None,
    )


@staff_page("recon:read")
async def runs_page(request: web.Request, staff: Staff) -> web.Response:
    bank = query_bank(request)
    before = cursor_before(request)
    async with request.app[ENGINE].connect() as conn:
        runs = await recon.list_runs(conn, bank=bank, before_id=before, limit=RUNS_PAGE + 1)
    page = runs[:RUNS_PAGE]
    next_url = None
    if len(runs) > RUNS_PAGE:
        query = {**({"bank": bank} if bank else {}), "cursor": str(page[-1].id)}
        next_url = str(request.url.with_path(RUNS_PATH).with_query(query).relative())
    settings = request.app[SETTINGS]
    return render(
        request,
        "finance/runs.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        runs=page,
        bank=bank or "",
        banks=sorted(settings.banks),
        next_url=next_url,
        upload_mb=settings.recon_upload_bytes_max // 1_048_576,
        upload_bytes_max=settings.recon_upload_bytes_max,
    )


@staff_page("recon:write")
async def start_fetch_form(request: web.Request, staff: Staff) -> web.Response:
    try:
        run, _ = await start_fetch(
            request, staff.principal.actor, staff.form.get("bank"), staff.form.get("statement_date")
        )
    except ApiError as err:
        return _unavailable(request, err)
    return see_other(f"{RUNS_PATH}/{run.id}")


@staff_page("recon:write", read=read_upload)
async def upload_form(request: web.Request, staff: Staff) -> web.Response:
    data = request.get(_UPLOAD, b"")
    if not data:
        raise ValidationError(FILE_FIELD, "choose the statement file")
    if len(data) > request.app[SETTINGS].recon_upload_bytes_max:
        return message_page(request, 413, "upload_too_large_title", "upload_too_large_message")
    try:
        outcome = await import_upload(request, staff.principal.actor, staff.form, data)
    except ApiError as err:
        return _unavailable(request, err)
    return see_other(f"{RUNS_PATH}/{outcome.run.id}")


@staff_page("recon:read")
async def run_page(request: web.Request, staff: Staff) -> web.Response:
    run_id = path_id(request, "reconciliation_id")
    run = await live_run(request, run_id)
    if "limit" not in request.query:
        request = request.clone(rel_url=request.rel_url.update_query(limit=LINES_PAGE))
    lines, next_cursor = await run_lines(request, run_id)
    line_class = request.query.get("class", "")
    next_url = None
    if next_cursor is not None:
        query = {**({"class": line_class} if line_class else {}), "cursor": next_cursor}
        next_url = str(request.url.with_path(f"{RUNS_PATH}/{run_id}").with_query(query).relative())
    return render(
        request,
        "finance/run.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        run=run,
        lines=lines,
        line_class=line_class,
        classes=LINE_CLASSES,
        next_url=next_url,
        refresh=REFRESH_SECONDS if run.status == "running" else None,
    )


@staff_page("recon:read")
async def run_csv(request: web.Request, staff: Staff) -> web.StreamResponse:
    return await report_csv(request)  # the API's, for the session's person


@staff_page("recon:read")
async def run_pdf(request: web.Request, staff: Staff) -> web.Response:
    return await report_pdf(request)


async def upload_script(request: web.Request) -> web.Response:
    return web.Response(
        body=_SCRIPT,
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(RUNS_PATH, runs_page)
    app.router.add_post(RUNS_PATH, start_fetch_form)
    app.router.add_post(UPLOAD_PATH, upload_form)
    app.router.add_get(RUNS_PATH + "/{reconciliation_id}", run_page)
    app.router.add_get(RUNS_PATH + "/{reconciliation_id}/report.csv", run_csv)
    app.router.add_get(RUNS_PATH + "/{reconciliation_id}/report.pdf", run_pdf)
    app.router.add_get(SCRIPT_PATH, upload_script)
