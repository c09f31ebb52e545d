"""Foundation: double-entry ledger, fines, API tokens, users.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE accounts (
    id           bigserial PRIMARY KEY,
    code         text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9:._-]{0,99}$'),
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Cached balances, split in shards so that concurrent entries on one hot
-- account (fines revenue) do not queue on a single row lock through their
-- commit. An account's balance is the sum of its shards.
CREATE TABLE account_balance_shards (
    account_id   bigint NOT NULL REFERENCES accounts (id),
    shard        smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    balance_vnd  bigint NOT NULL,
    PRIMARY KEY (account_id, shard)
);

CREATE TABLE journal_entries (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    kind             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    content_hash     text NOT NULL,
    reverses_entry_id bigint REFERENCES journal_entries (id),
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX journal_entries_one_reversal ON journal_entries (reverses_entry_id)
    WHERE reverses_entry_id IS NOT NULL;

CREATE TABLE postings (
    id          bigserial PRIMARY KEY,
    entry_id    bigint NOT NULL REFERENCES journal_entries (id),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    amount_vnd  bigint NOT NULL CHECK (amount_vnd <> 0)
);
CREATE INDEX postings_entry_id ON postings (entry_id);
CREATE INDEX postings_account_id ON postings (account_id);

-- Every entry sums to zero and has at least two postings; checked at commit,
-- so the postings of one entry can be inserted one by one.
CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    n     bigint;
BEGIN
    SELECT coalesce(sum(amount_vnd), 0), count(*) INTO total, n
      FROM postings WHERE entry_id = NEW.entry_id;
    IF total <> 0 OR n < 2 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced (sum % over % postings)',
            NEW.entry_id, total, n
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER postings_balanced
    AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();

-- An entry must have postings at all (an entry row alone would be "balanced").
CREATE FUNCTION ledger_check_entry_has_postings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id) THEN
        RAISE EXCEPTION 'journal entry % has no postings', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_entries_have_postings
    AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_has_postings();

-- Entries and postings are immutable: corrections are reversing entries.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Cached balances move only together with postings.
CREATE FUNCTION ledger_apply_posting() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_balance_shards AS s (account_id, shard, balance_vnd)
    VALUES (NEW.account_id, (NEW.entry_id % 16)::smallint, NEW.amount_vnd)
    ON CONFLICT (account_id, shard)
    DO UPDATE SET balance_vnd = s.balance_vnd + EXCLUDED.balance_vnd;
    RETURN NULL;
END $$;

CREATE TRIGGER postings_apply_balance AFTER INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_posting();

-- A balance changes only through a posting (the trigger above), never directly.
CREATE FUNCTION ledger_guard_balance() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() <= 1 THEN
        RAISE EXCEPTION 'account balances change only through postings'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN COALESCE(NEW, OLD);
END $$;

CREATE TRIGGER balance_shards_guard BEFORE INSERT OR UPDATE OR DELETE ON account_balance_shards
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_balance();
CREATE TRIGGER balance_shards_no_truncate BEFORE TRUNCATE ON account_balance_shards
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE TABLE fines (
    id               bigserial PRIMARY KEY,
    decision_number  text NOT NULL CHECK (length(decision_number) BETWEEN 1 AND 64),
    decision_key     text NOT NULL UNIQUE CHECK (length(decision_key) BETWEEN 1 AND 64),
    amount_vnd       bigint NOT NULL CHECK (amount_vnd > 0),
    violator_name    text NOT NULL,
    plate            text NOT NULL,
    issuing_unit     text NOT NULL,
    violation        text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    token_hash  text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('officer', 'finance', 'approver', 'operator', 'admin', 'portal')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._-]{2,64}$'),
    full_name      text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('officer', 'finance', 'approver', 'operator', 'admin')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);

INSERT INTO accounts (code, name, kind) VALUES
    ('fines-revenue', 'Fines collected (state budget)', 'revenue'),
    ('suspense', 'Unidentified receipts (suspense)', 'liability'),
    ('refunds-payable', 'Refunds payable to citizens', 'liability');
"""

DOWNGRADE = r"""
DROP TABLE users;
DROP TABLE api_tokens;
DROP TABLE fines;
DROP TRIGGER postings_apply_balance ON postings;
DROP TABLE postings;
DROP TABLE journal_entries;
DROP TABLE account_balance_shards;
DROP TABLE accounts;
DROP FUNCTION ledger_guard_balance();
DROP FUNCTION ledger_apply_posting();
DROP FUNCTION ledger_refuse_change();
DROP FUNCTION ledger_check_entry_has_postings();
DROP FUNCTION ledger_check_entry_balanced();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
