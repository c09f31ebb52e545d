"""The operators' console: the last link probe of each bank.

``bank_link_probes``: one row per bank, overwritten by the link prober at
each probe (``ledger.link_health.record_probe``): when, whether the bank
answered, how long it took. The console's link board shows it (the
latency of the last probe); outages stay in ``bank_outages`` (0003).

The in-doubt queue needs no storage of its own: it reads the status checks
the saga notes in ``payment_events``.

Grants nothing: 0011's default privileges give the app role what it needs
(insert and update the row of a bank).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE bank_link_probes (
    bank        text PRIMARY KEY CHECK (bank ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    probed_at   timestamptz NOT NULL,
    ok          boolean NOT NULL,
    latency_ms  integer NOT NULL CHECK (latency_ms >= 0),
    cause       text NOT NULL CHECK (length(cause) <= 1000)
);
"""

DOWNGRADE = r"""
DROP TABLE bank_link_probes;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
