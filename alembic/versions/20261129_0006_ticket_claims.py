"""The decision's claim on a ticket: no transaction is held while the agent answers.

tickets gains `claim_token` and `claimed_until` (taken in a short transaction before
the agent is asked, cleared by the act; an expired claim is a dead worker's, and the
sweep takes the ticket over), `decision_attempts` (claims taken) and `decision_error`
(why the last attempt failed; after 3 the ticket goes to human triage with it).
Existing tickets start with no claim, no attempts and no error.

Revision ID: 0006
Revises: 0010
Create Date: 2026-11-29 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decision_attempts', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('decision_error', sa.String(length=500), server_default='',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('decision_error')
        batch_op.drop_column('decision_attempts')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claim_token')
