"""Indexes for the console's lists (``ledger.listings``): payments newest
first, receipts of a series, audit rows of an actor.

Receipts page on their id (the primary key) and the audit log's subject
filter already has ``audit_log_subject`` (0006); no table or column changes.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE INDEX payments_newest ON payments (created_at DESC, id DESC);
CREATE INDEX receipts_series_newest ON receipts (series, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);
"""

DOWNGRADE = r"""
DROP INDEX audit_log_actor;
DROP INDEX receipts_series_newest;
DROP INDEX payments_newest;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
