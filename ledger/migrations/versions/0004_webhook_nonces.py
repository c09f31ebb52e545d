"""Webhook nonces (replay protection shared by every API process); receipts
guard also covers the payload and lets the copy count only grow.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhook_nonces (
            bank        text NOT NULL,
            nonce       text NOT NULL CHECK (length(nonce) BETWEEN 1 AND 200),
            expires_at  timestamptz NOT NULL,
            PRIMARY KEY (bank, nonce)
        );
        CREATE INDEX webhook_nonces_expires ON webhook_nonces (expires_at);

        CREATE OR REPLACE FUNCTION receipts_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'receipts cannot be deleted'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF (NEW.payment_id, NEW.series, NEW.number, NEW.issued_at, NEW.payload,
                NEW.payload_canonical, NEW.signature, NEW.key_id)
               IS DISTINCT FROM
               (OLD.payment_id, OLD.series, OLD.number, OLD.issued_at, OLD.payload,
                OLD.payload_canonical, OLD.signature, OLD.key_id)
               OR NEW.copies < OLD.copies THEN
                RAISE EXCEPTION 'receipts are immutable (only the copy count may grow)'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE webhook_nonces")
