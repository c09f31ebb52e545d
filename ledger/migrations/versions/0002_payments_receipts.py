"""Payments with state history, receipts with gapless series, outbox.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE payments (
    id                  uuid PRIMARY KEY,
    fine_id             bigint NOT NULL REFERENCES fines (id),
    bank                text NOT NULL CHECK (bank ~ '^[a-z0-9_-]{1,32}$'),
    payer_account       text NOT NULL CHECK (length(payer_account) BETWEEN 1 AND 64),
    amount_vnd          bigint NOT NULL CHECK (amount_vnd > 0),
    status              text NOT NULL CHECK (status IN
                            ('initiated', 'verifying', 'succeeded', 'declined', 'refunded')),
    -- The key sent to the bank with the debit; derived from the payment id.
    debit_key           text NOT NULL UNIQUE,
    -- True for the one succeeded payment that settles the fine (and gets the
    -- receipt). A second succeeded debit has it false and is refunded.
    settles_fine        boolean NOT NULL DEFAULT false,
    channel             text NOT NULL DEFAULT 'portal'
                            CHECK (channel IN ('portal', 'counter', 'reconciliation', 'dispute')),
    bank_ref            text,
    decline_reason      text,
    workflow_id         text,
    debited_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'succeeded' OR bank_ref IS NOT NULL),
    CHECK (NOT settles_fine OR status = 'succeeded')
);
CREATE UNIQUE INDEX payments_one_settling_per_fine ON payments (fine_id) WHERE settles_fine;
-- One payment the service drives per fine at a time. Debits found outside
-- (late webhooks, statements) are recorded and settled in one transaction.
CREATE UNIQUE INDEX payments_one_live_per_fine ON payments (fine_id)
    WHERE status IN ('initiated', 'verifying') AND channel IN ('portal', 'counter');
CREATE UNIQUE INDEX payments_bank_ref ON payments (bank, bank_ref) WHERE bank_ref IS NOT NULL;
CREATE INDEX payments_fine_id ON payments (fine_id);
CREATE INDEX payments_in_doubt ON payments (bank, created_at)
    WHERE status IN ('initiated', 'verifying');

-- API idempotency: a client's Idempotency-Key, the hash of its request and the
-- payment it led to. Kept at least 24 h (the purge job keeps 7 days).
CREATE TABLE api_idempotency_keys (
    client_id     text NOT NULL,
    client_key    text NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    request_hash  text NOT NULL,
    payment_id    uuid NOT NULL REFERENCES payments (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, client_key)
);
CREATE INDEX api_idempotency_keys_created ON api_idempotency_keys (created_at);

CREATE TABLE payment_events (
    id           bigserial PRIMARY KEY,
    payment_id   uuid NOT NULL REFERENCES payments (id),
    at           timestamptz NOT NULL DEFAULT now(),
    from_status  text,
    to_status    text NOT NULL,
    cause        text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, id);

CREATE TABLE receipt_series (
    series       text PRIMARY KEY CHECK (series ~ '^[A-Z0-9-]{1,40}$'),
    issuing_unit text NOT NULL,
    year         integer NOT NULL CHECK (year BETWEEN 2000 AND 2200),
    last_number  integer NOT NULL DEFAULT 0 CHECK (last_number >= 0)
);

CREATE TABLE receipts (
    id             bigserial PRIMARY KEY,
    payment_id     uuid NOT NULL UNIQUE REFERENCES payments (id),
    series         text NOT NULL REFERENCES receipt_series (series),
    number         integer NOT NULL CHECK (number > 0),
    issued_at      timestamptz NOT NULL,
    payload        jsonb NOT NULL,
    payload_canonical text NOT NULL,
    signature      text NOT NULL,
    key_id         text NOT NULL,
    copies         integer NOT NULL DEFAULT 1 CHECK (copies >= 1),
    last_copy_at   timestamptz,
    UNIQUE (series, number)
);

-- Receipts are immutable but for the copy counter.
CREATE FUNCTION receipts_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'receipts cannot be deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.payment_id, NEW.series, NEW.number, NEW.issued_at, NEW.payload_canonical,
        NEW.signature, NEW.key_id)
       IS DISTINCT FROM
       (OLD.payment_id, OLD.series, OLD.number, OLD.issued_at, OLD.payload_canonical,
        OLD.signature, OLD.key_id) THEN
        RAISE EXCEPTION 'receipts are immutable (only the copy count may change)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER receipts_immutable BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION receipts_guard();

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    dedupe_key    text NOT NULL UNIQUE,
    kind          text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    sent_at       timestamptz,
    last_error    text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
"""

DOWNGRADE = r"""
DROP TABLE outbox;
DROP TABLE receipts;
DROP FUNCTION receipts_guard();
DROP TABLE receipt_series;
DROP TABLE payment_events;
DROP TABLE api_idempotency_keys;
DROP TABLE payments;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
