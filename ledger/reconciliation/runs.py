"""Reconciliation runs and statement imports: creating, joining, finishing
and reading them. Plain CRUD over ``reconciliations`` and
``statement_imports``, shared by the load, the workflows, the API and the
CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain
from typing import Any, Final

from sqlalchemy import JSON, Text, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.errors import ConflictError, NotFoundError, ValidationError
from ledger.core.rows import field_names, row_mapper

RUN_STATUSES: Final = ("running", "completed", "failed")
SOURCES: Final = ("fetch", "upload")
TRIGGERS: Final = ("schedule", "api", "cli", "upload")
FORMATS: Final = ("camt053", "mt940", "csv")
ERROR_CHARS_MAX: Final = 2_000
REQUESTED_BY_CHARS_MAX: Final = 200


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
    counts: dict[str, int]  # RUN_COUNT_COLUMNS, in that order
    error: str | None
    started_at: datetime
    finished_at: datetime | None


_runs: Final = t.reconciliations
# The totals a finished run stores: the table's columns that are not the
# run's own fields (nor the workflow run that created it).
RUN_COUNT_COLUMNS: Final = tuple(
    column.name
    for column in _runs.columns
    if column.name not in {*field_names(Run), "workflow_run_id"}
)
# What a Run is read from: its fields, the totals as one object (json, not
# jsonb: its keys keep the columns' order).
_RUN: Final = (
    *(_runs.c[name] for name in field_names(Run) if name != "counts"),
    func.json_build_object(
        *chain.from_iterable((literal(name, Text), _runs.c[name]) for name in RUN_COUNT_COLUMNS),
        type_=JSON,
    ).label("counts"),
)
# Any row: SQLAlchemy's Row is what it maps (the mapper reads its columns).
_run: Final[Callable[[Any], Run]] = row_mapper(Run)


async def get_run(conn: AsyncConnection, run_id: int, *, for_update: bool = False) -> Run:
    query = select(*_RUN).where(_runs.c.id == run_id)
    row = (await conn.execute(query.with_for_update() if for_update else query)).one_or_none()
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
    query = select(*_RUN).order_by(_runs.c.id.desc()).limit(limit)
    if bank is not None:
        query = query.where(_runs.c.bank == bank)
    if statement_date is not None:
        query = query.where(_runs.c.statement_date == statement_date)
    if before_id is not None:
        query = query.where(_runs.c.id < before_id)
    return [_run(row) for row in await conn.execute(query)]


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
    new = (
        insert(_runs)
        .values(
            bank=bank,
            statement_date=statement_date,
            source=source,
            trigger=trigger,
            requested_by=requested_by[:REQUESTED_BY_CHARS_MAX],
            workflow_id=workflow_id,
            workflow_run_id=workflow_run_id,
            import_id=import_id,
            started_at=now,
        )
        .on_conflict_do_nothing()
        .returning(*_RUN)
    )
    existing = (
        select(*_RUN)
        .where(
            (_runs.c.workflow_run_id == workflow_run_id)
            | ((_runs.c.workflow_id == workflow_id) & (_runs.c.status == "running"))
        )
        .order_by(_runs.c.id)
        .limit(1)
    )
    for _ in range(3):  # the running one may finish between insert and read
        row = (await conn.execute(new)).one_or_none()
        if row is not None:
            return _run(row), True
        row = (await conn.execute(existing)).one_or_none()
        if row is not None:
            return _run(row), False
    raise ConflictError(f"could not create or join a reconciliation for {workflow_id}")


async def set_workflow(
    conn: AsyncConnection, run_id: int, workflow_id: str, workflow_run_id: str | None = None
) -> None:
    await conn.execute(
        update(_runs)
        .where(_runs.c.id == run_id)
        .values(
            workflow_id=workflow_id,
            workflow_run_id=func.coalesce(_runs.c.workflow_run_id, workflow_run_id),
        )
    )


async def attach_import(conn: AsyncConnection, run_id: int, import_id: int) -> None:
    await conn.execute(update(_runs).where(_runs.c.id == run_id).values(import_id=import_id))


async def fail_run(conn: AsyncConnection, run_id: int, error: str, now: datetime) -> Run:
    """Mark a run failed (a finished run stays as it is)."""
    await conn.execute(
        update(_runs)
        .where(_runs.c.id == run_id, _runs.c.status == "running")
        .values(status="failed", error=error[:ERROR_CHARS_MAX], finished_at=now)
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


_imports: Final = t.statement_imports
_IMPORT: Final = tuple(_imports.c[name] for name in field_names(StatementImport))
_import: Final[Callable[[Any], StatementImport]] = row_mapper(StatementImport)


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
    """Record a statement file (the same content for the same bank, date and
    source is the same import: an uploaded file never passes for a fetched
    statement). Returns it and whether it is new."""
    if fmt not in FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")
    new = (
        insert(_imports)
        .values(
            bank=bank,
            statement_date=statement_date,
            source=source,
            format=fmt,
            content_sha256=content_sha256,
            data=data,
            size_bytes=len(data) if data is not None else 0,
            lines=lines,
            uploaded_by=uploaded_by[:REQUESTED_BY_CHARS_MAX],
            created_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=["bank", "statement_date", "source", "content_sha256"]
        )
        .returning(*_IMPORT)
    )
    row = (await conn.execute(new)).one_or_none()
    if row is not None:
        return _import(row), True
    existing = select(*_IMPORT).where(
        _imports.c.bank == bank,
        _imports.c.statement_date == statement_date,
        _imports.c.source == source,
        _imports.c.content_sha256 == content_sha256,
    )
    return _import((await conn.execute(existing)).one()), False


async def get_import(conn: AsyncConnection, import_id: int) -> StatementImport:
    query = select(*_IMPORT).where(_imports.c.id == import_id)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError(f"no statement import {import_id}")
    return _import(row)


async def import_data(conn: AsyncConnection, import_id: int) -> bytes:
    """The uploaded file of an import."""
    query = select(_imports.c.data).where(_imports.c.id == import_id)
    data = (await conn.execute(query)).scalar_one_or_none()
    if data is None:
        raise NotFoundError(f"statement import {import_id} has no stored file")
    return bytes(data)
