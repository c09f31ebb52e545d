"""What ``reconciler audit verify`` and ``reconciler disputes list`` do (the
click commands in ``reconciler.cli.main`` only parse options and print)."""

from __future__ import annotations

from typing import Final

from ledger.core.audit import verify_audit_chain
from ledger.disputes import list_disputes
from reconciler.db import create_engine
from reconciler.settings import Settings

PROBLEMS_SHOWN_MAX: Final = 200


async def audit_verify(settings: Settings, page_size: int) -> tuple[bool, list[str]]:
    """Verify the chain in one consistent snapshot; the report's lines and
    whether the chain is intact."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                report = await verify_audit_chain(conn, page_size=page_size)
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
    if report.ok:
        lines.append("the audit chain is intact")
    else:
        lines.append(f"the audit chain is BROKEN: {report.problems_total} problem(s)")
    return report.ok, lines


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
