"""Tickets opened from a message; a ticket the requester withdrew.

- tickets.origin_channel_id, tickets.origin_message_ts: the message a ticket was opened
  from (a :ticket: reaction or the "Create a ticket" message shortcut), unique
  together, so concurrent reactions on one message open one ticket. NULL for every
  other ticket (NULLs never collide, on PostgreSQL or SQLite).
- tickets.status may be `closed` (withdrawn by the requester from App Home).

The downgrade files closed tickets as resolved (the nearest earlier status) and drops
the origin columns.

Revision ID: 0015
Revises: 0012
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ('new', 'open', 'in_progress', 'awaiting_user', 'escalated', 'resolved')
NEW_STATUSES = (*OLD_STATUSES, 'closed')


def _in(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({allowed})"


def upgrade() -> None:
    # SQLite cannot alter a constraint: batch mode rebuilds the table (env.py turns
    # foreign keys off around that, so the rebuild cascades nothing).
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin_channel_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('origin_message_ts', sa.String(length=50), nullable=True))
        batch_op.create_unique_constraint(op.f('uq_tickets_origin_channel_id'),
                                          ['origin_channel_id', 'origin_message_ts'])
        batch_op.drop_constraint(op.f('ck_tickets_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_tickets_status_known'),
                                         _in('status', NEW_STATUSES))


def downgrade() -> None:
    op.execute(sa.text("UPDATE tickets SET status = 'resolved' WHERE status = 'closed'"))
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_tickets_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_tickets_status_known'),
                                         _in('status', OLD_STATUSES))
        batch_op.drop_constraint(op.f('uq_tickets_origin_channel_id'), type_='unique')
        batch_op.drop_column('origin_message_ts')
        batch_op.drop_column('origin_channel_id')
