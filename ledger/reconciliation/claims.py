"""A statement a person uploaded is a claim, not the bank's word.

Its lines are matched like the bank's (``matching``): a line that books a
payment we already settled confirms what the ledger holds and stays
``matched``. Every other line would move money or hold it — heal an unpaid
fine (settle it, issue a receipt), refund a duplicate, book money to
suspense — and none of that may happen on a file's say-so. Such a line is
written ``unconfirmed``, with no action and nothing in suspense, and its
discrepancy (``unconfirmed``, with what the line would have been in
``detail.would_be``, the uploader and the file's SHA-256) waits for:

* the bank's own word: the same reference on a statement fetched from the
  bank (the fetched line loads even so, acts with the bank's amount and
  account, and closes the claim: ``payment_checks.AUTO_RESOLVE_SQL``); or
* a second person's approval of a manual match (``discrepancies``), which
  books the fine's payment with the payer unknown: an uploaded file never
  names the account money goes to. The uploader can never approve it.

Every line of an upload is marked ``uploaded``: the bank's lines and the
uploaded ones have separate unique indexes on the bank reference, so a fake
line never stops the bank's own line with the same reference from loading.

``claim_upload`` runs in the load's transaction, right after the upload's
lines are written (an upload always takes the one-connection path, so no
line is visible to anyone before it is a claim); the bank's statements
never come here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.audit import append_audit
from ledger.reconciliation.runs import Run, StatementImport

# The upload's new lines, found by their bank references in the staging
# table (the bank's unique index: still unmarked here), marked uploaded;
# those that would act or hold money made claims, with their discrepancies
# (those the load opened turned into claims, one opened for a line that
# would have healed a fine).
CLAIM_SQL: Final = """
WITH upload AS (
    SELECT uploaded_by, content_sha256 FROM statement_imports WHERE id = :import_id
), old AS (
    SELECT l.id, l.class, l.action, l.in_suspense
      FROM recon_staging s
      JOIN statement_lines l ON l.bank = :bank AND l.bank_ref = s.bank_ref AND NOT l.uploaded
     WHERE l.reconciliation_id = :rid AND l.import_id = :import_id
), marked AS (
    UPDATE statement_lines l
       SET uploaded = true,
           class = CASE WHEN o.class = 'matched' THEN 'matched' ELSE 'unconfirmed' END,
           action = NULL, in_suspense = false
      FROM old o
     WHERE l.id = o.id
    RETURNING l.id, l.bank, l.statement_date, l.bank_ref, l.booked_at, l.amount_vnd,
              l.direction, l.counterparty, l.content, l.rule, l.payment_id, l.fine_id,
              o.class AS would_be, o.action AS would_act, o.in_suspense AS would_hold
), claimed AS (
    SELECT m.*, jsonb_build_object(
               'would_be', m.would_be, 'would_act', m.would_act,
               'would_hold_in_suspense', m.would_hold, 'uploaded', true,
               'uploaded_by', u.uploaded_by, 'import_id', CAST(:import_id AS bigint),
               'content_sha256', u.content_sha256,
               'automatic_action', NULL, 'in_suspense', false) AS claim
      FROM marked m CROSS JOIN upload u
     WHERE m.would_be <> 'matched'
), reclassed AS (
    UPDATE discrepancies d
       SET kind = 'unconfirmed', detail = d.detail || c.claim, updated_at = :now
      FROM claimed c
     WHERE d.statement_line_id = c.id
    RETURNING 1
), opened AS (
    INSERT INTO discrepancies (reconciliation_id, bank, statement_date, kind,
                               statement_line_id, payment_id, fine_id, amount_vnd, detail,
                               created_at, updated_at)
    SELECT :rid, c.bank, c.statement_date, 'unconfirmed', c.id, c.payment_id, c.fine_id,
           c.amount_vnd,
           jsonb_build_object(
               'bank_ref', c.bank_ref, 'direction', c.direction, 'rule', c.rule,
               'booked_at', c.booked_at, 'counterparty', c.counterparty,
               'content', c.content) || c.claim,
           :now, :now
      FROM claimed c
     WHERE NOT EXISTS (SELECT 1 FROM discrepancies d WHERE d.statement_line_id = c.id)
    RETURNING 1
)
SELECT would_be, direction, count(*) AS lines, sum(amount_vnd) AS amount_vnd,
       (SELECT count(*) FROM opened) AS opened, (SELECT count(*) FROM reclassed) AS reclassed
  FROM claimed
 GROUP BY would_be, direction
"""


@dataclass(frozen=True)
class Claims:
    """What ``claim_upload`` made claims of: (would-be class, direction) →
    (lines, amount), and how many discrepancies it opened."""

    groups: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    opened: int = 0

    @property
    def lines(self) -> int:
        return sum(lines for lines, _ in self.groups.values())


async def claim_upload(conn: AsyncConnection, write: dict[str, Any]) -> Claims:
    """Make claims of the uploaded lines just written (``write``: the load's
    ``matching.write_params``), in the load's transaction."""
    rows = (await conn.execute(text(CLAIM_SQL), write)).all()
    groups = {(r.would_be, r.direction): (int(r.lines), int(r.amount_vnd)) for r in rows}
    return Claims(groups, int(rows[0].opened) if rows else 0)


def reclassify(
    classes: dict[str, int], amounts: dict[str, int], claims: Claims
) -> tuple[dict[str, int], dict[str, int]]:
    """A load's counts by class (and amounts by ``class:direction``) with the
    claimed lines moved to ``unconfirmed``."""
    classes, amounts = dict(classes), dict(amounts)
    for (would_be, direction), (lines, amount) in claims.groups.items():
        classes[would_be] -= lines
        if not classes[would_be]:
            del classes[would_be]
        classes["unconfirmed"] = classes.get("unconfirmed", 0) + lines
        key = f"{would_be}:{direction}"
        amounts[key] -= amount
        if not amounts[key]:
            del amounts[key]
        moved = f"unconfirmed:{direction}"
        amounts[moved] = amounts.get(moved, 0) + amount
    return classes, amounts


UPLOAD_SUBJECT: Final = "statement_import"


async def audit_upload(
    conn: AsyncConnection,
    statement_import: StatementImport,
    run: Run,
    uploaded_by: str,
    *,
    already_imported: bool,
    now: datetime,
) -> None:
    """Every upload in the audit log, with who uploaded it and the file's
    SHA-256 (the same file again too: each upload is a claim someone made).
    Last in the caller's transaction (the audit head's lock)."""
    await append_audit(
        conn,
        actor=uploaded_by,
        action="statement.uploaded",
        subject_type=UPLOAD_SUBJECT,
        subject_id=str(statement_import.id),
        now=now,
        detail={
            "bank": statement_import.bank,
            "statement_date": statement_import.statement_date.isoformat(),
            "format": statement_import.format,
            "content_sha256": statement_import.content_sha256,
            "size_bytes": statement_import.size_bytes,
            "lines": statement_import.lines,
            "reconciliation_id": run.id,
            "already_imported": already_imported,
        },
    )
