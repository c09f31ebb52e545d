"""The app's own database role (DML only), and the audit chain's anchors.

The migrations run as the database owner; the app (api, worker, prober)
connects as ``app_role`` (``reconciler_app`` unless ``upgrade_to_head`` is
told otherwise by RECONCILER_DB_APP_ROLE). It may read and write rows, never
change the schema: no DDL, no ``ALTER TABLE ... DISABLE TRIGGER`` (only an
owner or a superuser can), no TRUNCATE, no UPDATE or DELETE on the
append-only tables, and DELETE only where the app forgets rows by design
(expired webhook nonces, ended sessions and login tokens). Its password is set by ``reconciler migrate``
(``ledger.migrations.set_role_password``), never written here.

Tables created by later migrations get SELECT, INSERT, UPDATE, DELETE for
the app by default privileges: a later append-only table must REVOKE what it
does not allow (and be added to APPEND_ONLY below for the record).

Revision ID: 0011
Revises: 0009
"""

import re

from alembic import context, op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

DEFAULT_APP_ROLE = "reconciler_app"
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Rows that are never changed or removed once written (receipts: but their
# copy counter and last copy time).
APPEND_ONLY = (
    "journal_entries",
    "postings",
    "audit_log",
    "audit_anchors",
    "receipts",
    "bank_events",
)
# The only tables whose rows the app deletes: expired webhook nonces, and
# login sessions and login tokens long past their expiry (ledger.access).
DELETABLE = ("webhook_nonces", "sessions", "api_tokens")

ANCHORS = r"""
-- A keyed MAC over the audit chain's head, written now and then by the worker
-- (ledger.core.audit_anchor). The key is never in the database: someone who
-- rewrites the log and recomputes its plain SHA-256 chain cannot make these
-- match again.
CREATE TABLE audit_anchors (
    id           bigserial PRIMARY KEY,
    row_id       bigint NOT NULL CHECK (row_id > 0),
    row_hash     text NOT NULL CHECK (row_hash ~ '^[0-9a-f]{64}$'),
    key_id       text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    mac          text NOT NULL CHECK (mac ~ '^[0-9a-f]{64}$'),
    anchored_at  timestamptz NOT NULL
);
CREATE INDEX audit_anchors_row ON audit_anchors (row_id);
CREATE TRIGGER audit_anchors_immutable BEFORE UPDATE OR DELETE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""


def _role() -> str:
    role = str(context.config.attributes.get("app_role", DEFAULT_APP_ROLE))
    if not _ROLE_RE.fullmatch(role):
        raise ValueError(f"app role {role!r} is not a plain lower-case name")
    return role


GRANTS = r"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} LOGIN;
    END IF;
END $$;
ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role};
GRANT DELETE ON {deletable} TO {role};
REVOKE UPDATE ON {append_only} FROM {role};
GRANT UPDATE (copies, last_copy_at) ON receipts TO {role};
REVOKE INSERT, UPDATE ON alembic_version FROM {role};

ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role};
"""

REVOKES = r"""
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {role};
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role};
REVOKE USAGE ON SCHEMA public FROM {role};
"""


def _fill(template: str, role: str) -> str:
    """DDL takes no bind parameters: the name is checked to be a plain
    identifier, and the table lists are our own constants."""
    assert _ROLE_RE.fullmatch(role), role
    return (
        template.replace("{role}", role)
        .replace("{append_only}", ", ".join(APPEND_ONLY))
        .replace("{deletable}", ", ".join(DELETABLE))
    )


def upgrade() -> None:
    op.execute(ANCHORS)
    op.execute(_fill(GRANTS, _role()))


def downgrade() -> None:
    # The role itself stays: it is cluster-wide, other databases may use it.
    op.execute(_fill(REVOKES, _role()))
    op.execute("DROP TABLE audit_anchors")
