"""Staff identity: people, service accounts, owned and expiring tokens, sessions.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- A portal or an integration: holds API tokens, never a person, so it never
-- requests or decides an approval (ledger/core/approvals.py). No service holds
-- 'approver' or 'admin'.
CREATE TABLE service_accounts (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9._-]{2,64}$'),
    role         text NOT NULL CHECK (role IN ('portal', 'officer', 'finance', 'operator')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    disabled_at  timestamptz
);

-- units: the issuing units a user may see; empty = all of them.
-- failed_logins counts failures since failed_since (the window's start);
-- locked_until is set when they reach the lock-out threshold.
-- password_set_by: who chose the current password (the user, an admin, the
-- CLI); a credential someone else issued never decides that someone's request.
ALTER TABLE users
    ADD COLUMN units text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(units) <= 50 AND array_position(units, NULL) IS NULL),
    ADD COLUMN failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    ADD COLUMN failed_since timestamptz,
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN last_login_at timestamptz,
    ADD COLUMN created_by text CHECK (length(created_by) BETWEEN 1 AND 200),
    ADD COLUMN password_set_at timestamptz,
    ADD COLUMN password_set_by text CHECK (length(password_set_by) BETWEEN 1 AND 200);

-- Tokens made before this revision had a role and no owner: they are revoked
-- (nothing was deployed; `reconciler dev` issues a new one) and handed to one
-- disabled service account so that every token has an owner.
UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL;
INSERT INTO service_accounts (name, role, created_by, disabled_at)
    SELECT 'legacy-tokens', 'portal', 'migration:0008', now()
     WHERE EXISTS (SELECT 1 FROM api_tokens);

ALTER TABLE api_tokens
    DROP CONSTRAINT api_tokens_name_key,
    DROP COLUMN role,
    ADD COLUMN user_id bigint REFERENCES users (id),
    ADD COLUMN service_account_id bigint REFERENCES service_accounts (id),
    ADD COLUMN kind text NOT NULL DEFAULT 'api' CHECK (kind IN ('session', 'api')),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN created_by text CHECK (length(created_by) BETWEEN 1 AND 200),
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN revoked_by text CHECK (length(revoked_by) BETWEEN 1 AND 200);

UPDATE api_tokens
   SET service_account_id = (SELECT id FROM service_accounts WHERE name = 'legacy-tokens'),
       expires_at = created_at + interval '1 second',
       created_by = 'migration:0008';

ALTER TABLE api_tokens
    ALTER COLUMN kind DROP DEFAULT,
    ALTER COLUMN expires_at SET NOT NULL,
    ALTER COLUMN created_by SET NOT NULL,
    ADD CONSTRAINT api_tokens_name CHECK (length(name) BETWEEN 1 AND 100),
    ADD CONSTRAINT api_tokens_one_owner
        CHECK ((user_id IS NULL) <> (service_account_id IS NULL)),
    -- A login gives a person a session token; a service only has API tokens.
    ADD CONSTRAINT api_tokens_service_kind CHECK (service_account_id IS NULL OR kind = 'api'),
    -- Every token expires, within a bound.
    ADD CONSTRAINT api_tokens_expiry
        CHECK (expires_at > created_at AND expires_at <= created_at + interval '366 days');

CREATE INDEX api_tokens_user ON api_tokens (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX api_tokens_service ON api_tokens (service_account_id, id)
    WHERE service_account_id IS NOT NULL;

-- Console sessions (a cookie holds the opaque id; only its SHA-256 is kept).
-- A session ends at expires_at, or after idle_timeout_seconds without use.
CREATE TABLE sessions (
    id                    bigserial PRIMARY KEY,
    id_hash               text NOT NULL UNIQUE CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    user_id               bigint NOT NULL REFERENCES users (id),
    csrf_secret           text NOT NULL CHECK (length(csrf_secret) BETWEEN 32 AND 100),
    created_at            timestamptz NOT NULL,
    last_seen_at          timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL CHECK (expires_at > created_at),
    idle_timeout_seconds  integer NOT NULL CHECK (idle_timeout_seconds BETWEEN 60 AND 86400),
    revoked_at            timestamptz,
    client                text NOT NULL DEFAULT '' CHECK (length(client) <= 200),
    CHECK (last_seen_at >= created_at)
);
CREATE INDEX sessions_user ON sessions (user_id, id);
"""

DOWNGRADE = r"""
DROP TABLE sessions;
DELETE FROM api_tokens;
ALTER TABLE api_tokens
    DROP CONSTRAINT api_tokens_name,
    DROP COLUMN user_id,
    DROP COLUMN service_account_id,
    DROP COLUMN kind,
    DROP COLUMN expires_at,
    DROP COLUMN created_by,
    DROP COLUMN last_used_at,
    DROP COLUMN revoked_by,
    ADD COLUMN role text NOT NULL
        CHECK (role IN ('officer', 'finance', 'approver', 'operator', 'admin', 'portal')),
    ADD CONSTRAINT api_tokens_name_key UNIQUE (name);
ALTER TABLE users
    DROP COLUMN units,
    DROP COLUMN failed_logins,
    DROP COLUMN failed_since,
    DROP COLUMN locked_until,
    DROP COLUMN last_login_at,
    DROP COLUMN created_by,
    DROP COLUMN password_set_at,
    DROP COLUMN password_set_by;
DROP TABLE service_accounts;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
