"""A disputing citizen's contact in fields of its own.

The counter's dispute form used to append the citizen's phone number or
email to the complaint's description, which the audit log copies into its
hash chain for good. The contact now has its own columns: the audit row
says only which kinds were given, and the contact can be erased once the
dispute is over without breaking the chain.

Stored normal forms only (``domain.contact``): a phone as digits, ``+84``
kept; an email of at most 254 characters. Existing disputes keep their
descriptions as written.

Grants nothing: the app role's table grants cover new columns.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE disputes
    ADD COLUMN contact_phone text CHECK (contact_phone ~ '^\+?[0-9]{9,12}$'),
    ADD COLUMN contact_email text CHECK (length(contact_email) BETWEEN 3 AND 254);
"""

DOWNGRADE = r"""
ALTER TABLE disputes DROP COLUMN contact_phone, DROP COLUMN contact_email;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
