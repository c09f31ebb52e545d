"""Alerts received from Alertmanager (the service's own alert receiver).

One row per alert (Alertmanager's fingerprint), updated as it fires again or
resolves; bounded by ``ledger.ops_alerts.ROWS_MAX`` (the oldest resolved
ones go first).

Grants nothing: 0011's default privileges give the app role SELECT, INSERT,
UPDATE and DELETE on this table, which is what it needs (an alert is updated
as it resolves, and the oldest rows are trimmed), so it is in neither of
0011's lists (APPEND_ONLY, DELETABLE).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE received_alerts (
    fingerprint  text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{1,32}$'),
    alertname    text NOT NULL,
    status       text NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity     text NOT NULL,
    team         text NOT NULL,
    bank         text,
    receiver     text NOT NULL,
    labels       jsonb NOT NULL,
    annotations  jsonb NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz,
    received_at  timestamptz NOT NULL
);
CREATE INDEX received_alerts_by_status ON received_alerts (status, received_at DESC);
"""

DOWNGRADE = r"""
DROP TABLE received_alerts;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
