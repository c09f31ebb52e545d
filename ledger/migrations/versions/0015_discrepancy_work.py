"""The discrepancy work queue: who works on an open discrepancy
(``ledger.reconciliation.work_queue``). Notes are not kept here: each is an
audit entry (``discrepancy.note``), append-only and in the hash chain.

The app role gets SELECT, INSERT, UPDATE, DELETE on the new table by the
default privileges 0011 set (DELETE: an item unassigned); nothing to grant.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE discrepancy_assignments (
    discrepancy_id  bigint PRIMARY KEY REFERENCES discrepancies (id),
    assignee        text NOT NULL CHECK (length(assignee) BETWEEN 1 AND 200),
    assigned_by     text NOT NULL CHECK (length(assigned_by) BETWEEN 1 AND 200),
    assigned_at     timestamptz NOT NULL
);
CREATE INDEX discrepancy_assignments_assignee ON discrepancy_assignments (assignee);
"""

DOWNGRADE = r"""
DROP TABLE discrepancy_assignments;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
