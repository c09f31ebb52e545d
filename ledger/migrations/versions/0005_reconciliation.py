"""Statement reconciliation: runs, imports, statement lines, match rules as
data, discrepancies; match keys on payments and fines.

Revision ID: 0005
Revises: 0004

``payments.payment_ref`` and ``fines.decision_alnum`` are generated columns
(computed once, when the row is written, and indexed) so that matching a
whole statement is a few hash joins, not a function call per line and
payment:

* ``payment_ref`` is ``bank_adapters.text.payment_reference(debit_key)``:
  ``TF`` + the first 10 base32 characters of sha256(debit_key) + a check
  character (the reference a VietQR transfer's content starts with);
* ``decision_alnum`` is ``bank_adapters.text.decision_number_key``: the
  decision number in upper-case ASCII letters and digits only, as banks
  leave it in transfer content. ``decision_key`` is already folded to
  ``[0-9a-z/._ -]``, so dropping the separators is enough.

Both equalities with the Python functions are tested.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE FUNCTION recon_payment_reference(debit_key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    -- The first 64 bits of the digest; base32 takes them 5 at a time.
    h bigint := ('x' || encode(substring(sha256(convert_to(debit_key, 'UTF8')) FROM 1 FOR 8),
                               'hex'))::bit(64)::bigint;
    alphabet constant text := 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    v integer;
    total integer := 0;
    ref text := 'TF';
BEGIN
    FOR i IN 0..9 LOOP
        v := ((h >> (59 - 5 * i)) & 31)::integer;
        ref := ref || substr(alphabet, v + 1, 1);
        total := total + (i + 1) * v;
    END LOOP;
    RETURN ref || substr(alphabet, total % 32 + 1, 1);
END $$;

ALTER TABLE payments
    ADD COLUMN payment_ref text GENERATED ALWAYS AS (recon_payment_reference(debit_key)) STORED;
CREATE INDEX payments_payment_ref ON payments (payment_ref);
-- "Succeeded at the bank on day D but not on its statement": by bank and day.
CREATE INDEX payments_debited ON payments (bank, debited_at)
    WHERE status IN ('succeeded', 'refunded');

ALTER TABLE fines
    ADD COLUMN decision_alnum text
        GENERATED ALWAYS AS (upper(regexp_replace(decision_key, '[^0-9a-z]+', '', 'g'))) STORED;
-- Content is searched by 6-character windows against the start of each key.
CREATE INDEX fines_decision_anchor ON fines (left(decision_alnum, 6));

-- Our refunds as the bank books them (money out on the statement).
CREATE INDEX journal_entries_refund_ref ON journal_entries ((metadata ->> 'refund_ref'))
    WHERE kind = 'refund';

-- One row per file (or fetched statement) per bank and statement date: the
-- same content again is recognised and loads nothing.
CREATE TABLE statement_imports (
    id              bigserial PRIMARY KEY,
    bank            text NOT NULL CHECK (bank ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    statement_date  date NOT NULL,
    source          text NOT NULL CHECK (source IN ('fetch', 'upload')),
    format          text NOT NULL CHECK (format IN ('camt053', 'mt940', 'csv')),
    content_sha256  text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    -- The uploaded file as received (fetched statements are not kept: the
    -- bank keeps them, and every line keeps its raw text).
    data            bytea,
    size_bytes      bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    lines           integer NOT NULL DEFAULT 0 CHECK (lines >= 0),
    new_lines       integer NOT NULL DEFAULT 0 CHECK (new_lines >= 0),
    uploaded_by     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    loaded_at       timestamptz,
    UNIQUE (bank, statement_date, content_sha256)
);

-- One row per run (a schedule tick, an API or CLI request, an upload).
CREATE TABLE reconciliations (
    id                 bigserial PRIMARY KEY,
    bank               text NOT NULL CHECK (bank ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    statement_date     date NOT NULL,
    source             text NOT NULL CHECK (source IN ('fetch', 'upload')),
    trigger            text NOT NULL CHECK (trigger IN ('schedule', 'api', 'cli', 'upload')),
    requested_by       text NOT NULL DEFAULT '',
    workflow_id        text,
    workflow_run_id    text UNIQUE,
    import_id          bigint REFERENCES statement_imports (id),
    status             text NOT NULL DEFAULT 'running'
                           CHECK (status IN ('running', 'completed', 'failed')),
    -- Snapshot of the statement date's lines and discrepancies at the end of
    -- the run (every line of the date, whichever run first loaded it).
    lines              integer NOT NULL DEFAULT 0,
    new_lines          integer NOT NULL DEFAULT 0,
    matched            integer NOT NULL DEFAULT 0,
    healed             integer NOT NULL DEFAULT 0,
    duplicates         integer NOT NULL DEFAULT 0,
    amount_mismatches  integer NOT NULL DEFAULT 0,
    unknown            integer NOT NULL DEFAULT 0,
    missing_at_bank    integer NOT NULL DEFAULT 0,
    in_doubt_too_long  integer NOT NULL DEFAULT 0,
    discrepancies      integer NOT NULL DEFAULT 0,
    discrepancies_open integer NOT NULL DEFAULT 0,
    actions_pending    integer NOT NULL DEFAULT 0,
    credit_total_vnd   bigint NOT NULL DEFAULT 0,
    debit_total_vnd    bigint NOT NULL DEFAULT 0,
    error              text CHECK (length(error) <= 2000),
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX reconciliations_bank_date ON reconciliations (bank, statement_date, id DESC);
-- At most one running run per workflow id (an API request while one runs joins it).
CREATE UNIQUE INDEX reconciliations_one_running ON reconciliations (workflow_id)
    WHERE status = 'running' AND workflow_id IS NOT NULL;

-- Every booking of a statement, once per bank reference, classified as it is
-- loaded (one write per line). No foreign keys here: a per-row check costs
-- more than the rest of loading a million-line statement, and every id is
-- written by the matching statement from rows it has just read.
CREATE TABLE statement_lines (
    id                 bigserial PRIMARY KEY,
    import_id          bigint NOT NULL,
    reconciliation_id  bigint NOT NULL,
    bank               text NOT NULL,
    bank_ref           text NOT NULL CHECK (length(bank_ref) BETWEEN 1 AND 64),
    statement_date     date NOT NULL,
    booked_at          timestamptz NOT NULL,
    amount_vnd         bigint NOT NULL CHECK (amount_vnd > 0 AND amount_vnd <= 1000000000000000),
    direction          text NOT NULL CHECK (direction IN ('credit', 'debit')),
    counterparty       text NOT NULL DEFAULT '',
    content            text NOT NULL DEFAULT '',
    -- alnum_key(content): upper-case ASCII letters and digits only.
    content_key        text NOT NULL DEFAULT '',
    -- The first valid payment reference (TF...) found in the content.
    content_ref        text,
    end_to_end_ref     text,
    raw                text NOT NULL DEFAULT '',
    source_line        integer NOT NULL DEFAULT 0,
    -- How the line was identified (a recon_match_rules.rule), and what it is.
    rule               text,
    payment_id         uuid,
    fine_id            bigint,
    class              text NOT NULL CHECK (class IN
                           ('matched', 'healed', 'duplicate', 'amount_mismatch', 'unknown')),
    decided_at         timestamptz NOT NULL,
    -- Money the ledger had not booked and no saga step will: posted to the
    -- suspense account (entry 'suspense:<bank>:<bank_ref>') until resolved.
    in_suspense        boolean NOT NULL DEFAULT false,
    suspense_entry_id  bigint,
    -- The saga step that books a healed or duplicate line, done once.
    action             text CHECK (action IN ('signal', 'external_debit')),
    action_done_at     timestamptz,
    action_attempts    integer NOT NULL DEFAULT 0,
    action_error       text,
    UNIQUE (bank, bank_ref),
    CHECK (action IS NULL OR class IN ('healed', 'duplicate')),
    CHECK (NOT (in_suspense AND action IS NOT NULL))
);
-- Lines arrive in date order: a BRIN index finds a date's lines for reports
-- at almost no cost per insert.
CREATE INDEX statement_lines_date ON statement_lines USING brin (statement_date);
-- What a run must follow up (discrepancies, suspense): everything not matched.
CREATE INDEX statement_lines_followup ON statement_lines (reconciliation_id)
    WHERE class <> 'matched';
CREATE INDEX statement_lines_actions ON statement_lines (bank, id)
    WHERE action IS NOT NULL AND action_done_at IS NULL;
CREATE INDEX statement_lines_suspense_pending ON statement_lines (bank, id)
    WHERE in_suspense AND suspense_entry_id IS NULL;

-- Matching rules as data: which rules run, in which order, with which
-- tolerances. A row for a bank overrides the '*' row of the same rule.
CREATE TABLE recon_match_rules (
    bank                 text NOT NULL DEFAULT '*'
                             CHECK (bank = '*' OR bank ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    rule                 text NOT NULL CHECK (rule IN
                             ('bank_ref', 'end_to_end', 'payment_reference', 'decision_number',
                              'refund_ref')),
    priority             integer NOT NULL CHECK (priority BETWEEN 1 AND 1000),
    enabled              boolean NOT NULL DEFAULT true,
    -- A line identified by this rule whose amount differs by at most this
    -- from the expected one counts as the same amount (money is only moved
    -- automatically on exactly equal amounts).
    amount_tolerance_vnd bigint NOT NULL DEFAULT 0
                             CHECK (amount_tolerance_vnd BETWEEN 0 AND 100000000),
    -- decision_number: the shortest start of a decision number accepted when
    -- the bank cut the content short (at least the 6-character index window).
    truncated_chars_min  integer NOT NULL DEFAULT 6 CHECK (truncated_chars_min BETWEEN 6 AND 64),
    description          text NOT NULL DEFAULT '',
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank, rule)
);
INSERT INTO recon_match_rules (bank, rule, priority, description) VALUES
    ('*', 'bank_ref', 10,
     'the bank''s own reference of a debit we already know (webhook, status check, earlier run)'),
    ('*', 'end_to_end', 20,
     'our idempotency key echoed back by the bank (camt.053 EndToEndId)'),
    ('*', 'payment_reference', 30,
     'our payment reference (TF + 11 characters, check character verified) in the content'),
    ('*', 'decision_number', 40,
     'a registered decision number in the content, diacritics and punctuation stripped, '
     'possibly cut short at the end, with the fine''s amount'),
    ('*', 'refund_ref', 50,
     'money out: one of our refunds, by the bank''s refund reference or our refund key');

CREATE TABLE discrepancies (
    id                 bigserial PRIMARY KEY,
    reconciliation_id  bigint NOT NULL REFERENCES reconciliations (id),
    bank               text NOT NULL,
    statement_date     date NOT NULL,
    kind               text NOT NULL CHECK (kind IN
                           ('duplicate', 'missing_at_bank', 'amount_mismatch', 'unknown',
                            'in_doubt_too_long')),
    statement_line_id  bigint REFERENCES statement_lines (id),
    payment_id         uuid REFERENCES payments (id),
    fine_id            bigint REFERENCES fines (id),
    amount_vnd         bigint NOT NULL CHECK (amount_vnd > 0),
    status             text NOT NULL DEFAULT 'open'
                           CHECK (status IN ('open', 'resolved', 'dismissed')),
    detail             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    resolved_at        timestamptz,
    resolved_by        text,
    resolution         text CHECK (length(resolution) <= 2000),
    CHECK (statement_line_id IS NOT NULL OR payment_id IS NOT NULL),
    CHECK ((status = 'open') = (resolved_at IS NULL))
);
-- A re-run never opens a second discrepancy for the same line or payment.
CREATE UNIQUE INDEX discrepancies_one_per_line ON discrepancies (statement_line_id)
    WHERE statement_line_id IS NOT NULL;
CREATE UNIQUE INDEX discrepancies_one_per_payment ON discrepancies (kind, payment_id)
    WHERE statement_line_id IS NULL;
CREATE INDEX discrepancies_list ON discrepancies (status, bank, kind, id);
CREATE INDEX discrepancies_date ON discrepancies (bank, statement_date);
"""

DOWNGRADE = r"""
DROP TABLE discrepancies;
DROP TABLE recon_match_rules;
DROP TABLE statement_lines;
DROP TABLE reconciliations;
DROP TABLE statement_imports;
DROP INDEX journal_entries_refund_ref;
DROP INDEX fines_decision_anchor;
ALTER TABLE fines DROP COLUMN decision_alnum;
DROP INDEX payments_debited;
DROP INDEX payments_payment_ref;
ALTER TABLE payments DROP COLUMN payment_ref;
DROP FUNCTION recon_payment_reference(text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
