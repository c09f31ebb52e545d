"""Alerts Alertmanager delivered to the service (its webhook receiver), kept
so that operators see what fires (``GET /api/v1/alerts``, the console).

One row per alert, keyed by Alertmanager's fingerprint: a repeat notification
updates it, a resolved one marks it resolved. The table is bounded: after
each delivery only the newest ``ROWS_MAX`` rows stay, firing ones first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Column, DateTime, Text, select, text
from sqlalchemy import Table as _Table
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.tables import metadata

ROWS_MAX: Final = 1000
STATUSES: Final = ("firing", "resolved")

received_alerts = _Table(
    "received_alerts",
    metadata,
    Column("fingerprint", Text, primary_key=True),
    Column("alertname", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("team", Text, nullable=False),
    Column("bank", Text),
    Column("receiver", Text, nullable=False),
    Column("labels", JSONB, nullable=False),
    Column("annotations", JSONB, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class ReceivedAlert:
    fingerprint: str
    alertname: str
    status: str
    severity: str
    team: str
    bank: str | None
    receiver: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime


_TRIM = text(
    """
    DELETE FROM received_alerts WHERE fingerprint IN (
        SELECT fingerprint FROM received_alerts
         ORDER BY (status = 'firing') DESC, received_at DESC, fingerprint
        OFFSET :keep)
    """
)


async def store_alerts(conn: AsyncConnection, alerts: list[ReceivedAlert]) -> None:
    """Insert or update each alert by fingerprint, then trim to ``ROWS_MAX``."""
    if not alerts:
        return
    rows: list[dict[str, Any]] = [vars(a) for a in alerts]
    stmt = insert(received_alerts).values(rows)
    excluded = stmt.excluded
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[received_alerts.c.fingerprint],
            set_={
                c: excluded[c]
                for c in (
                    "alertname",
                    "status",
                    "severity",
                    "team",
                    "bank",
                    "receiver",
                    "labels",
                    "annotations",
                    "starts_at",
                    "ends_at",
                    "received_at",
                )
            },
        )
    )
    await conn.execute(_TRIM, {"keep": ROWS_MAX})


async def list_alerts(conn: AsyncConnection, status: str | None, limit: int) -> list[ReceivedAlert]:
    """Firing first, then the most recently received."""
    t = received_alerts
    query = select(t).order_by((t.c.status == "firing").desc(), t.c.received_at.desc()).limit(limit)
    if status is not None:
        query = query.where(t.c.status == status)
    rows = (await conn.execute(query)).mappings().all()
    return [ReceivedAlert(**dict(row)) for row in rows]
