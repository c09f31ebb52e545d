"""Reconciliation runs and statement imports: creating, joining, finishing
and reading them. Plain CRUD over ``reconciliations`` and
``statement_imports``, shared by the load, the workflows, the API and the
CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.errors import ConflictError, NotFoundError, ValidationError

RUN_STATUSES: Final = ("running", "completed", "failed")
SOURCES: Final = ("fetch", "upload")
TRIGGERS: Final = ("schedule", "api", "cli", "upload")
FORMATS: Final = ("camt053", "mt940", "csv")
ERROR_CHARS_MAX: Final = 2_000


@dataclass(frozen=True)
class Run:
    id: int
    bank: str
    statement_date: date
    source: str
    trigger: str
    requested_by: str
    workflow_id: str | None
    import_id: int | None
    status: str
    counts: dict[str, int]
    error: str | None
    started_at: datetime
    finished_at: datetime | None


RUN_COUNT_COLUMNS: Final = (
    "lines",
    "new_lines",
    "matched",
    "healed",
    "duplicates",
    "amount_mismatches",
    "unknown",
    "missing_at_bank",
    "in_doubt_too_long",
    "discrepancies",
    "discrepancies_open",
    "actions_pending",
    "credit_total_vnd",
    "debit_total_vnd",
)


def _run(row: Any) -> Run:
    return Run(
        id=int(row.id),
        bank=row.bank,
        statement_date=row.statement_date,
        source=row.source,
        trigger=row.trigger,
        requested_by=row.requested_by,
        workflow_id=row.workflow_id,
        import_id=row.import_id,
        status=row.status,
        counts={name: int(getattr(row, name)) for name in RUN_COUNT_COLUMNS},
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


_GET_RUN: Final = "SELECT * FROM reconciliations WHERE id = :id"
_GET_RUN_FOR_UPDATE: Final = _GET_RUN + " FOR UPDATE"


async def get_run(conn: AsyncConnection, run_id: int, *, for_update: bool = False) -> Run:
    sql = _GET_RUN_FOR_UPDATE if for_update else _GET_RUN
    row = (await conn.execute(text(sql), {"id": run_id})).one_or_none()
    if row is None:
        raise NotFoundError(f"no reconciliation {run_id}")
    return _run(row)


async def list_runs(
    conn: AsyncConnection,
    *,
    bank: str | None = None,
    statement_date: date | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Run]:
    assert 1 <= limit <= 500
    rows = (
        await conn.execute(
            text(
                "SELECT * FROM reconciliations"
                " WHERE (CAST(:bank AS text) IS NULL OR bank = :bank)"
                " AND (CAST(:day AS date) IS NULL OR statement_date = :day)"
                " AND (CAST(:before AS bigint) IS NULL OR id < :before)"
                " ORDER BY id DESC LIMIT :limit"
            ),
            {"bank": bank, "day": statement_date, "before": before_id, "limit": limit},
        )
    ).all()
    return [_run(r) for r in rows]


def _check_run_fields(bank: str, source: str, trigger: str) -> None:
    if source not in SOURCES:
        raise ValidationError("source", f"must be one of {', '.join(SOURCES)}")
    if trigger not in TRIGGERS:
        raise ValidationError("trigger", f"must be one of {', '.join(TRIGGERS)}")
    if not bank or len(bank) > 32:
        raise ValidationError("bank", "must be a configured bank id")


async def create_run(
    conn: AsyncConnection,
    *,
    bank: str,
    statement_date: date,
    source: str,
    trigger: str,
    requested_by: str,
    now: datetime,
    workflow_id: str | None = None,
    workflow_run_id: str | None = None,
    import_id: int | None = None,
) -> tuple[Run, bool]:
    """A new run, or the running one with the same workflow id (an API call
    while that reconciliation runs joins it), or the one of this workflow run
    (an activity retried). Returns the run and whether it was created."""
    _check_run_fields(bank, source, trigger)
    for _ in range(3):  # the running one may finish between insert and read
        row = (
            await conn.execute(
                text(
                    "INSERT INTO reconciliations (bank, statement_date, source, trigger,"
                    " requested_by, workflow_id, workflow_run_id, import_id, started_at)"
                    " VALUES (:bank, :day, :source, :trigger, :by, :wid, :rid, :import_id, :now)"
                    " ON CONFLICT DO NOTHING RETURNING *"
                ),
                {
                    "bank": bank,
                    "day": statement_date,
                    "source": source,
                    "trigger": trigger,
                    "by": requested_by[:200],
                    "wid": workflow_id,
                    "rid": workflow_run_id,
                    "import_id": import_id,
                    "now": now,
                },
            )
        ).one_or_none()
        if row is not None:
            return _run(row), True
        existing = (
            await conn.execute(
                text(
                    "SELECT * FROM reconciliations WHERE workflow_run_id = :rid"
                    " OR (workflow_id = :wid AND status = 'running') ORDER BY id LIMIT 1"
                ),
                {"rid": workflow_run_id, "wid": workflow_id},
            )
        ).one_or_none()
        if existing is not None:
            return _run(existing), False
    raise ConflictError(f"could not create or join a reconciliation for {workflow_id}")


async def set_workflow(
    conn: AsyncConnection, run_id: int, workflow_id: str, workflow_run_id: str | None = None
) -> None:
    await conn.execute(
        text(
            "UPDATE reconciliations SET workflow_id = :wid,"
            " workflow_run_id = coalesce(workflow_run_id, :rid) WHERE id = :id"
        ),
        {"id": run_id, "wid": workflow_id, "rid": workflow_run_id},
    )


async def attach_import(conn: AsyncConnection, run_id: int, import_id: int) -> None:
    await conn.execute(
        text("UPDATE reconciliations SET import_id = :import_id WHERE id = :id"),
        {"id": run_id, "import_id": import_id},
    )


async def fail_run(conn: AsyncConnection, run_id: int, error: str, now: datetime) -> Run:
    """Mark a run failed (a finished run stays as it is)."""
    await conn.execute(
        text(
            "UPDATE reconciliations SET status = 'failed', error = :error, finished_at = :now"
            " WHERE id = :id AND status = 'running'"
        ),
        {"id": run_id, "error": error[:ERROR_CHARS_MAX], "now": now},
    )
    return await get_run(conn, run_id)


@dataclass(frozen=True)
class StatementImport:
    id: int
    bank: str
    statement_date: date
    source: str
    format: str
    content_sha256: str
    size_bytes: int
    lines: int
    new_lines: int
    loaded_at: datetime | None


def _import(row: Any) -> StatementImport:
    return StatementImport(
        id=int(row.id),
        bank=row.bank,
        statement_date=row.statement_date,
        source=row.source,
        format=row.format,
        content_sha256=row.content_sha256,
        size_bytes=int(row.size_bytes),
        lines=int(row.lines),
        new_lines=int(row.new_lines),
        loaded_at=row.loaded_at,
    )


_IMPORT_COLUMNS: Final = (
    "id, bank, statement_date, source, format, content_sha256, size_bytes, lines, new_lines,"
    " loaded_at"
)


async def register_import(
    conn: AsyncConnection,
    *,
    bank: str,
    statement_date: date,
    source: str,
    fmt: str,
    content_sha256: str,
    lines: int,
    now: datetime,
    data: bytes | None = None,
    uploaded_by: str = "",
) -> tuple[StatementImport, bool]:
    """Record a statement file (the same content for the same bank and date is
    the same import). Returns it and whether it is new."""
    if fmt not in FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")
    row = (
        await conn.execute(
            text(
                "INSERT INTO statement_imports (bank, statement_date, source, format,"  # noqa: S608
                " content_sha256, data, size_bytes, lines, uploaded_by, created_at)"
                " VALUES (:bank, :day, :source, :fmt, :sha, :data, :size, :lines, :by, :now)"
                " ON CONFLICT (bank, statement_date, content_sha256) DO NOTHING"
                f" RETURNING {_IMPORT_COLUMNS}"
            ),
            {
                "bank": bank,
                "day": statement_date,
                "source": source,
                "fmt": fmt,
                "sha": content_sha256,
                "data": data,
                "size": len(data) if data is not None else 0,
                "lines": lines,
                "by": uploaded_by[:200],
                "now": now,
            },
        )
    ).one_or_none()
    if row is not None:
        return _import(row), True
    existing = (
        await conn.execute(
            text(
                f"SELECT {_IMPORT_COLUMNS} FROM statement_imports"  # noqa: S608
                " WHERE bank = :bank AND statement_date = :day AND content_sha256 = :sha"
            ),
            {"bank": bank, "day": statement_date, "sha": content_sha256},
        )
    ).one()
    return _import(existing), False


async def get_import(conn: AsyncConnection, import_id: int) -> StatementImport:
    row = (
        await conn.execute(
            text(f"SELECT {_IMPORT_COLUMNS} FROM statement_imports WHERE id = :id"),  # noqa: S608
            {"id": import_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no statement import {import_id}")
    return _import(row)


async def import_data(conn: AsyncConnection, import_id: int) -> bytes:
    """The uploaded file of an import."""
    data = (
        await conn.execute(
            text("SELECT data FROM statement_imports WHERE id = :id"), {"id": import_id}
        )
    ).scalar_one_or_none()
    if data is None:
        raise NotFoundError(f"statement import {import_id} has no stored file")
    return bytes(data)
