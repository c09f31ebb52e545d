"""The integrity checks, run by the ``IntegrityChecks`` workflow on a
Temporal Schedule (``workflows.ops.schedules``): ``receipts verify`` (every
receipt's signature, every series without gaps) and ``audit verify`` (the
hash chain and its keyed anchors), each result exported as
``integrity_check_*`` by the worker that ran it, so that
IntegrityCheckFailed and IntegrityCheckNotRun
(observability/prometheus/alerts.yml) watch them (the alerts take the newest
result over all workers).

What the commands check, the same functions; read-only, in one snapshot per
check. A problem is logged at error level with its count, the details are
what the command prints.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.audit import verify_audit_chain
from ledger.core.audit_anchor import verify_anchors
from ledger.receipts.issue import verify_receipts
from ledger.receipts.signing import ReceiptVerifier
from observability import metrics as m

log = structlog.get_logger(__name__)


async def receipts_problems(engine: AsyncEngine, verifier: ReceiptVerifier) -> int:
    async with engine.connect() as conn:
        report = await verify_receipts(conn, verifier)
    return len(report.bad) + len(report.series_problems)


async def audit_problems(engine: AsyncEngine, key: bytes) -> int:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            chain = await verify_audit_chain(conn)
            anchors = await verify_anchors(conn, key, chain, datetime.now(UTC))
    return chain.problems_total + anchors.problems_total


def export(check: str, problems: int) -> None:
    m.integrity_check_problems.labels(check).set(problems)
    stamp = (
        m.integrity_check_last_failure_timestamp_seconds
        if problems
        else (m.integrity_check_last_success_timestamp_seconds)
    )
    stamp.labels(check).set(time.time())
    if problems:
        log.error("integrity.check_failed", check=check, problems=problems)
    else:
        log.info("integrity.check_passed", check=check)
