"""Hash-chained audit log, maker-checker approvals, disputes.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- The audit log. Row ids are handed out by the head row below (last_id + 1),
-- not by a sequence: a sequence leaves gaps on rollback, and a gap must mean
-- a deleted row. The head row is locked by every append, so appends are
-- strictly ordered and each commits or rolls back with the action it records.
CREATE TABLE audit_log (
    id            bigint PRIMARY KEY CHECK (id > 0),
    at            timestamptz NOT NULL,
    actor         text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action        text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$' AND length(action) <= 100),
    subject_type  text NOT NULL CHECK (subject_type ~ '^[a-z][a-z0-9_]{0,39}$'),
    subject_id    text NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 200),
    detail        jsonb NOT NULL,
    prev_hash     text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash          text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_subject ON audit_log (subject_type, subject_id, id);

CREATE TABLE audit_head (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id     bigint NOT NULL CHECK (last_id >= 0),
    last_hash   text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$')
);
INSERT INTO audit_head (singleton, last_id, last_hash) VALUES (true, 0, repeat('0', 64));

-- An appended row must continue the chain at the head; the head follows it.
CREATE FUNCTION audit_link_to_head() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_head WHERE singleton FOR UPDATE;
    IF NEW.id <> head.last_id + 1 OR NEW.prev_hash <> head.last_hash THEN
        RAISE EXCEPTION 'audit row % does not continue the chain at % (append through ledger.core.audit)',
            NEW.id, head.last_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE audit_head SET last_id = NEW.id, last_hash = NEW.hash WHERE singleton;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_link BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_link_to_head();
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The head moves only with an append (the trigger above), never directly.
CREATE FUNCTION audit_guard_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR pg_trigger_depth() <= 1 THEN
        RAISE EXCEPTION 'the audit head moves only by appending to audit_log'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_head_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_guard_head();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Maker-checker: a request waits for a second person's decision.
CREATE TABLE approvals (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN
                         ('refund', 'manual_match', 'dispute_confirm', 'dispute_refund')),
    subject_type     text NOT NULL CHECK (subject_type ~ '^[a-z][a-z0-9_]{0,39}$'),
    subject_id       text NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 200),
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    requested_by     text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
    requested_at     timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'approved', 'rejected', 'expired', 'executed', 'failed')),
    decided_by       text CHECK (length(decided_by) BETWEEN 1 AND 200),
    decided_at       timestamptz,
    decision_reason  text CHECK (length(decision_reason) <= 2000),
    executed_at      timestamptz,
    result           jsonb,
    -- The workflow waiting for the decision (signalled 'decision'), if any.
    workflow_id      text CHECK (length(workflow_id) <= 300),
    -- Whoever asked can never decide (checked in code first, for a clear error).
    CONSTRAINT approvals_four_eyes CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CONSTRAINT approvals_decided CHECK (
        (status = 'pending' AND decided_at IS NULL AND decided_by IS NULL)
        OR (status = 'expired' AND decided_at IS NOT NULL AND decided_by IS NULL)
        OR (status IN ('approved', 'rejected', 'executed', 'failed')
            AND decided_at IS NOT NULL AND decided_by IS NOT NULL)),
    CONSTRAINT approvals_executed CHECK ((status IN ('executed', 'failed')) = (executed_at IS NOT NULL))
);
-- One open request per kind and subject: asking again joins it.
CREATE UNIQUE INDEX approvals_one_open ON approvals (kind, subject_type, subject_id)
    WHERE status IN ('pending', 'approved');
CREATE INDEX approvals_status ON approvals (status, id);
CREATE INDEX approvals_subject ON approvals (subject_type, subject_id, id);

-- The request is immutable; the status only moves forward.
CREATE FUNCTION approvals_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'approvals cannot be deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.id, NEW.kind, NEW.subject_type, NEW.subject_id, NEW.payload, NEW.reason,
        NEW.requested_by, NEW.requested_at)
       IS DISTINCT FROM
       (OLD.id, OLD.kind, OLD.subject_type, OLD.subject_id, OLD.payload, OLD.reason,
        OLD.requested_by, OLD.requested_at) THEN
        RAISE EXCEPTION 'an approval request cannot be changed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'pending' AND NEW.status IN ('approved', 'rejected', 'expired'))
        OR (OLD.status = 'approved' AND NEW.status IN ('executed', 'failed'))) THEN
        RAISE EXCEPTION 'approval % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'pending' AND (NEW.decided_by, NEW.decided_at, NEW.decision_reason)
       IS DISTINCT FROM (OLD.decided_by, OLD.decided_at, OLD.decision_reason) THEN
        RAISE EXCEPTION 'the decision on approval % cannot be changed', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER approvals_guard BEFORE UPDATE OR DELETE ON approvals
    FOR EACH ROW EXECUTE FUNCTION approvals_guard();

-- A citizen's complaint ("debited, no receipt") and its resolution. Its
-- history is the audit log (subject 'dispute').
CREATE TABLE disputes (
    id                 bigserial PRIMARY KEY,
    fine_id            bigint NOT NULL REFERENCES fines (id),
    bank               text NOT NULL CHECK (bank ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    amount_vnd         bigint NOT NULL CHECK (amount_vnd > 0),
    occurred_at        timestamptz NOT NULL,
    bank_ref           text CHECK (bank_ref ~ '^[A-Za-z0-9._:-]{1,100}$'),
    payer_account      text CHECK (payer_account ~ '^[A-Za-z0-9]{1,34}$'),
    description        text NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    status             text NOT NULL DEFAULT 'open' CHECK (status IN
                           ('open', 'awaiting_approval', 'executing', 'confirmed', 'refunded', 'rejected')),
    opened_by          text NOT NULL CHECK (length(opened_by) BETWEEN 1 AND 200),
    opened_at          timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    approval_id        bigint REFERENCES approvals (id),
    resolution         text CHECK (resolution IN ('confirm', 'refund', 'reject')),
    resolution_reason  text CHECK (length(resolution_reason) <= 2000),
    resolved_by        text,
    resolved_at        timestamptz,
    payment_id         uuid REFERENCES payments (id),
    result             jsonb,
    CHECK ((status IN ('confirmed', 'refunded', 'rejected')) = (resolved_at IS NOT NULL)),
    CHECK (status NOT IN ('awaiting_approval', 'executing') OR approval_id IS NOT NULL)
);
CREATE INDEX disputes_status ON disputes (status, id);
CREATE INDEX disputes_fine ON disputes (fine_id, id);
-- One unresolved complaint per bank debit.
CREATE UNIQUE INDEX disputes_one_open_per_debit ON disputes (bank, bank_ref)
    WHERE bank_ref IS NOT NULL AND status NOT IN ('confirmed', 'refunded', 'rejected');

CREATE FUNCTION disputes_no_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'disputes cannot be deleted' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER disputes_no_delete BEFORE DELETE ON disputes
    FOR EACH ROW EXECUTE FUNCTION disputes_no_delete();
"""

DOWNGRADE = r"""
DROP TABLE disputes;
DROP FUNCTION disputes_no_delete();
DROP TABLE approvals;
DROP FUNCTION approvals_guard();
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP FUNCTION audit_guard_head();
DROP FUNCTION audit_link_to_head();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
