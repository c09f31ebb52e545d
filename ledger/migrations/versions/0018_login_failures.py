"""Failed logins shared by every API process.

Each API process throttles failed logins in memory first; with several
processes behind one address a guesser would get that many times the
attempts. ``login_failures`` holds the failures of the last window (five
minutes by default) for all of them (``ledger.access.login_failures``): by
client address and by username, each as its SHA-256 (the table never holds
an address or a name in clear), deleted once out of the window.

Grants: 0011's default privileges give the app role SELECT, INSERT, UPDATE
and DELETE on a new table; it deletes what has left the window.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE login_failures (
    id        bigserial PRIMARY KEY,
    kind      text NOT NULL CHECK (kind IN ('address', 'username')),
    key_hash  bytea NOT NULL CHECK (length(key_hash) = 32),
    at        timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (kind, key_hash, at);
CREATE INDEX login_failures_at ON login_failures (at);
"""

DOWNGRADE = r"""
DROP TABLE login_failures;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
