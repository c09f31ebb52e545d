"""Money moves only on the bank's word: uploaded statement lines are claims,
verified bank events are kept, dispute evidence is stored.

Revision ID: 0009
Revises: 0008

* ``statement_lines.uploaded``: the line came from a file a person uploaded,
  not from the bank. Such a line never acts (no healing, refund or suspense
  entry): it is matched, and what it would do waits as an ``unconfirmed``
  discrepancy. Bank references are unique among the bank's own lines and,
  separately, among uploaded ones, so a fake line uploaded under a real
  reference never stops the bank's own line from loading.
* ``statement_imports``: an uploaded file and a fetched statement never share
  an import (the content hash is unique per source).
* ``bank_events``: every verified bank webhook, once per event: the evidence
  a signalled success is settled on.
* ``dispute_evidence``: what was last gathered from the bank about a dispute
  (the dispute's page reads it; it never calls the bank itself).
* ``discrepancies``: the kind ``unconfirmed``, and ``amount_mismatch`` opened
  by a webhook (no run) for the payment it names.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE statement_lines ADD COLUMN uploaded boolean NOT NULL DEFAULT false;
UPDATE statement_lines l SET uploaded = true
  FROM statement_imports i WHERE i.id = l.import_id AND i.source = 'upload';
ALTER TABLE statement_lines DROP CONSTRAINT statement_lines_bank_bank_ref_key;
-- The name the loader knows a collision by (ledger/reconciliation/bulk_load.py).
CREATE UNIQUE INDEX statement_lines_bank_bank_ref_key ON statement_lines (bank, bank_ref)
    WHERE NOT uploaded;
CREATE UNIQUE INDEX statement_lines_uploaded_bank_ref ON statement_lines (bank, bank_ref)
    WHERE uploaded;
ALTER TABLE statement_lines DROP CONSTRAINT statement_lines_class_check;
ALTER TABLE statement_lines ADD CONSTRAINT statement_lines_class_check CHECK (class IN
    ('matched', 'healed', 'duplicate', 'amount_mismatch', 'unknown', 'unconfirmed'));
ALTER TABLE statement_lines ADD CONSTRAINT statement_lines_uploaded_never_acts
    CHECK (NOT uploaded OR (action IS NULL AND NOT in_suspense));

ALTER TABLE statement_imports
    DROP CONSTRAINT statement_imports_bank_statement_date_content_sha256_key;
ALTER TABLE statement_imports ADD CONSTRAINT statement_imports_one_per_content
    UNIQUE (bank, statement_date, source, content_sha256);

ALTER TABLE reconciliations ADD COLUMN unconfirmed integer NOT NULL DEFAULT 0;

ALTER TABLE discrepancies DROP CONSTRAINT discrepancies_kind_check;
ALTER TABLE discrepancies ADD CONSTRAINT discrepancies_kind_check CHECK (kind IN
    ('duplicate', 'missing_at_bank', 'amount_mismatch', 'unknown', 'in_doubt_too_long',
     'unconfirmed'));
ALTER TABLE discrepancies DROP CONSTRAINT discrepancies_run_or_saga;
ALTER TABLE discrepancies ADD CONSTRAINT discrepancies_run_or_saga
    CHECK (reconciliation_id IS NOT NULL
           OR (kind IN ('in_doubt_too_long', 'amount_mismatch') AND payment_id IS NOT NULL));

-- Verified bank callbacks, as the bank sent them (append-only).
CREATE TABLE bank_events (
    id               bigserial PRIMARY KEY,
    bank             text NOT NULL CHECK (bank ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    event_id         text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
    kind             text NOT NULL CHECK (kind IN ('debit', 'refund')),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    bank_ref         text CHECK (length(bank_ref) BETWEEN 1 AND 200),
    status           text NOT NULL CHECK (length(status) BETWEEN 1 AND 200),
    outcome          text NOT NULL CHECK (outcome IN
                         ('succeeded', 'declined', 'pending', 'outcome_unknown')),
    amount_vnd       bigint NOT NULL CHECK (amount_vnd > 0),
    occurred_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    UNIQUE (bank, event_id)
);
CREATE INDEX bank_events_by_key ON bank_events (bank, idempotency_key);
CREATE TRIGGER bank_events_immutable BEFORE UPDATE OR DELETE ON bank_events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER bank_events_no_truncate BEFORE TRUNCATE ON bank_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The bank's side of a dispute, as last gathered (by the workflow or on
-- request): live status checks, and the bank's own record of the debit.
CREATE TABLE dispute_evidence (
    dispute_id      bigint PRIMARY KEY REFERENCES disputes (id),
    gathered_at     timestamptz NOT NULL,
    gathered_by     text NOT NULL CHECK (length(gathered_by) BETWEEN 1 AND 200),
    bank_reachable  boolean,
    bank_note       text NOT NULL CHECK (length(bank_note) <= 1000),
    checks          jsonb NOT NULL DEFAULT '[]'::jsonb,
    debit           jsonb
);
"""

DOWNGRADE = r"""
DROP TABLE dispute_evidence;
DROP TABLE bank_events;
DELETE FROM discrepancies WHERE kind = 'unconfirmed'
    OR (reconciliation_id IS NULL AND kind = 'amount_mismatch');
ALTER TABLE discrepancies DROP CONSTRAINT discrepancies_run_or_saga;
ALTER TABLE discrepancies ADD CONSTRAINT discrepancies_run_or_saga
    CHECK (reconciliation_id IS NOT NULL OR (kind = 'in_doubt_too_long' AND payment_id IS NOT NULL));
ALTER TABLE discrepancies DROP CONSTRAINT discrepancies_kind_check;
ALTER TABLE discrepancies ADD CONSTRAINT discrepancies_kind_check CHECK (kind IN
    ('duplicate', 'missing_at_bank', 'amount_mismatch', 'unknown', 'in_doubt_too_long'));
ALTER TABLE reconciliations DROP COLUMN unconfirmed;
-- An uploaded file whose hash is a fetched statement's of the same day cannot
-- keep it under the old constraint: its recorded hash is made distinct.
UPDATE statement_imports u
   SET content_sha256 = encode(sha256(convert_to(u.content_sha256 || '-upload', 'UTF8')), 'hex')
 WHERE u.source = 'upload' AND EXISTS (
       SELECT 1 FROM statement_imports f
        WHERE f.source = 'fetch' AND f.bank = u.bank AND f.statement_date = u.statement_date
          AND f.content_sha256 = u.content_sha256);
ALTER TABLE statement_imports DROP CONSTRAINT statement_imports_one_per_content;
ALTER TABLE statement_imports ADD CONSTRAINT statement_imports_bank_statement_date_content_sha256_key
    UNIQUE (bank, statement_date, content_sha256);
-- An uploaded line sharing a reference with one of the bank's cannot stay.
DELETE FROM statement_lines l WHERE l.uploaded AND EXISTS (
    SELECT 1 FROM statement_lines f WHERE f.bank = l.bank AND f.bank_ref = l.bank_ref
       AND NOT f.uploaded);
ALTER TABLE statement_lines DROP CONSTRAINT statement_lines_uploaded_never_acts;
UPDATE statement_lines SET class = 'unknown' WHERE class = 'unconfirmed';
ALTER TABLE statement_lines DROP CONSTRAINT statement_lines_class_check;
ALTER TABLE statement_lines ADD CONSTRAINT statement_lines_class_check CHECK (class IN
    ('matched', 'healed', 'duplicate', 'amount_mismatch', 'unknown'));
DROP INDEX statement_lines_uploaded_bank_ref;
DROP INDEX statement_lines_bank_bank_ref_key;
ALTER TABLE statement_lines ADD CONSTRAINT statement_lines_bank_bank_ref_key
    UNIQUE (bank, bank_ref);
ALTER TABLE statement_lines DROP COLUMN uploaded;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
