"""Discrepancies opened outside a reconciliation run: the payment saga's
'in doubt too long' for a payment it keeps verifying.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- NULL: not opened by a run (the payment saga); the kind and the payment say
-- what it is about. Per-run counts and reports filter by run and are unchanged.
ALTER TABLE discrepancies ALTER COLUMN reconciliation_id DROP NOT NULL;
ALTER TABLE discrepancies ADD CONSTRAINT discrepancies_run_or_saga
    CHECK (reconciliation_id IS NOT NULL OR (kind = 'in_doubt_too_long' AND payment_id IS NOT NULL));
"""

# Saga-opened discrepancies cannot be kept without a run: they go (their
# payments' history and outbox notices remain).
DOWNGRADE = r"""
ALTER TABLE discrepancies DROP CONSTRAINT discrepancies_run_or_saga;
DELETE FROM discrepancies WHERE reconciliation_id IS NULL;
ALTER TABLE discrepancies ALTER COLUMN reconciliation_id SET NOT NULL;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
