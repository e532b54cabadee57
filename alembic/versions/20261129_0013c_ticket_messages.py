"""The clarification loop: ticket_messages, the requester's replies in the thread of the
bot's question, each decided on with the ticket; and an index to find a ticket by its
thread (every threaded message in the bot's channels is looked up).

The downgrade drops the table, and with it the replies (the tickets keep their first
message).

Revision ID: 0013c
Revises: 0012
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013c'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'ticket_messages',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.String(length=32), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('slack_channel_id', sa.String(length=32), nullable=False),
        sa.Column('slack_ts', sa.String(length=50), nullable=False),
        sa.Column('event_id', sa.String(length=100), nullable=True),
        sa.Column('decided_action_id', sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'],
                                name=op.f('fk_ticket_messages_ticket_id_tickets')),
        sa.ForeignKeyConstraint(['decided_action_id'], ['action_history.id'],
                                name=op.f('fk_ticket_messages_decided_action_id_action_history')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_messages')),
    )
    with op.batch_alter_table('ticket_messages', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_messages_ticket_id', ['ticket_id'], unique=False)
        batch_op.create_index('uq_ticket_messages_slack_channel_id_slack_ts',
                              ['slack_channel_id', 'slack_ts'], unique=True)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_slack_channel_id_slack_thread_ts',
                              ['slack_channel_id', 'slack_thread_ts'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_slack_channel_id_slack_thread_ts')
    with op.batch_alter_table('ticket_messages', schema=None) as batch_op:
        batch_op.drop_index('uq_ticket_messages_slack_channel_id_slack_ts')
        batch_op.drop_index('ix_ticket_messages_ticket_id')
    op.drop_table('ticket_messages')
