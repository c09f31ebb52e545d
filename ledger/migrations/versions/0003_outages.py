"""Bank link outages recorded by the link prober.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE bank_outages (
    id                bigserial PRIMARY KEY,
    bank              text NOT NULL CHECK (bank ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    cause             text NOT NULL DEFAULT '' CHECK (length(cause) <= 1000),
    -- Derived, so reports can sum downtime in SQL; NULL while the outage is open.
    duration_seconds  double precision
        GENERATED ALWAYS AS (EXTRACT(EPOCH FROM (ended_at - started_at))::double precision) STORED,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bank_outages_ends_after_start CHECK (ended_at IS NULL OR ended_at >= started_at)
);

-- At most one open outage per bank: a restarted (or second) prober resumes
-- the open one instead of opening another.
CREATE UNIQUE INDEX bank_outages_one_open_per_bank ON bank_outages (bank)
    WHERE ended_at IS NULL;
CREATE INDEX bank_outages_bank_started_at ON bank_outages (bank, started_at DESC);
CREATE INDEX bank_outages_started_at ON bank_outages (started_at DESC);
"""

DOWNGRADE = r"""
DROP TABLE bank_outages;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
