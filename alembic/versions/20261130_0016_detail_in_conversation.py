"""Detail added from App Home joins the conversation: a ticket_messages row (kind
`detail`, with no Slack message) instead of text appended to tickets.description.

- ticket_messages.kind: `reply` (a reply in the thread, every row so far) or `detail`.
- ticket_messages.slack_channel_id, slack_ts: nullable (detail has no Slack message;
  NULLs never collide in the unique index, on PostgreSQL or SQLite).

The downgrade drops the detail rows (their text is lost from the conversation: earlier
versions kept it in the description) and the column, and makes the Slack columns
required again.

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ticket_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='reply',
                                      nullable=False))
        batch_op.create_check_constraint(op.f('ck_ticket_messages_kind_known'),
                                         "kind IN ('reply', 'detail')")
        batch_op.alter_column('slack_channel_id', existing_type=sa.String(length=32), nullable=True)
        batch_op.alter_column('slack_ts', existing_type=sa.String(length=50), nullable=True)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ticket_messages WHERE kind = 'detail'"))
    with op.batch_alter_table('ticket_messages', schema=None) as batch_op:
        batch_op.alter_column('slack_ts', existing_type=sa.String(length=50), nullable=False)
        batch_op.alter_column('slack_channel_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_constraint(op.f('ck_ticket_messages_kind_known'), type_='check')
        batch_op.drop_column('kind')
