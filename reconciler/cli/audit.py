"""What ``reconciler audit verify|anchor`` and ``reconciler disputes list`` do
(the click commands in ``reconciler.cli.main`` only parse options and print)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from ledger.core.audit import verify_audit_chain
from ledger.core.audit_anchor import (
    UNANCHORED_SECONDS_MAX_DEFAULT,
    AnchorReport,
    anchor_head,
    verify_anchors,
)
from ledger.disputes import list_disputes
from reconciler.db import create_engine
from reconciler.settings import Settings

PROBLEMS_SHOWN_MAX: Final = 200


async def audit_verify(
    settings: Settings,
    page_size: int,
    *,
    key: bytes | None = None,
    expected: tuple[int, str] | None = None,
    unanchored_seconds_max: float = UNANCHORED_SECONDS_MAX_DEFAULT,
) -> tuple[bool, list[str]]:
    """Verify the chain, then its anchors with the audit key (``key``; None:
    the chain only, said in the report), in one consistent snapshot; the
    report's lines and whether the log is intact."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                report = await verify_audit_chain(conn, page_size=page_size)
                anchors = None
                if key is not None:
                    anchors = await verify_anchors(
                        conn,
                        key,
                        report,
                        datetime.now(UTC),
                        unanchored_seconds_max=unanchored_seconds_max,
                        expected=expected,
                    )
    finally:
        await engine.dispose()
    lines = [
        f"checked {report.rows_checked} audit rows; head is row {report.head_id} "
        f"hash {report.head_hash}"
    ]
    lines += [
        f"BROKEN row {p.row_id} [{p.kind}]: {p.message}"
        for p in report.problems[:PROBLEMS_SHOWN_MAX]
    ]
    if report.problems_total > PROBLEMS_SHOWN_MAX:
        lines.append(f"... and {report.problems_total - PROBLEMS_SHOWN_MAX} more problems")
    lines += _anchor_lines(anchors)
    ok = report.ok and (anchors is None or anchors.ok)
    total = report.problems_total + (anchors.problems_total if anchors else 0)
    lines.append(
        "the audit chain is intact" if ok else f"the audit chain is BROKEN: {total} problem(s)"
    )
    return ok, lines


def _anchor_lines(anchors: AnchorReport | None) -> list[str]:
    if anchors is None:
        return ["anchors NOT checked: no audit key (RECONCILER_AUDIT_KEY)"]
    at = anchors.last_anchored_at.isoformat() if anchors.last_anchored_at else "never"
    lines = [
        f"checked {anchors.anchors_checked} anchors; the newest valid one seals row "
        f"{anchors.last_row_id} ({at}); {anchors.unanchored_rows} row(s) after it"
    ]
    lines += [
        f"BROKEN row {p.row_id} [anchor]: {p.message}"
        for p in anchors.problems[:PROBLEMS_SHOWN_MAX]
    ]
    return lines


async def audit_anchor(settings: Settings, key: bytes) -> str:
    """Seal the head now (what the worker does every minute)."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                anchor = await anchor_head(conn, key, datetime.now(UTC))
    finally:
        await engine.dispose()
    if anchor is None:
        return "the head is already anchored"
    return f"anchored row {anchor.row_id}: {anchor.row_id}:{anchor.mac}"


async def disputes_list(settings: Settings, status: str | None, limit: int) -> list[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = await list_disputes(conn, status=status, limit=limit)
    finally:
        await engine.dispose()
    return [
        f"{d.id}\t{d.status}\t{d.decision_number}\t{d.bank}\t{d.amount_vnd}\t"
        f"{d.bank_ref or '-'}\t{d.opened_by}\t{d.opened_at.isoformat()}"
        for d in rows
    ]
