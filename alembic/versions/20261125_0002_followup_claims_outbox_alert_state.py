"""Follow-up claims on ticket_resolution, the Slack outbox, and alert state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:35:34.537998
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('alert_state',
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('firing', sa.Boolean(), nullable=False),
    sa.Column('first_fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_value', sa.Double(), nullable=True),
    sa.Column('last_message', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('rule', name=op.f('pk_alert_state'))
    )
    op.create_table('slack_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('thread_ts', sa.String(length=50), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('blocks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('fallback_user', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_channel', sa.String(length=64), nullable=True),
    sa.Column('message_ts', sa.String(length=50), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'], name=op.f('fk_slack_outbox_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_outbox'))
    )
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_slack_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('followup_claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('followup_claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('followup_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('followup_channel', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('followup_message_ts', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('followup_last_error', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.drop_column('followup_last_error')
        batch_op.drop_column('followup_message_ts')
        batch_op.drop_column('followup_channel')
        batch_op.drop_column('followup_attempts')
        batch_op.drop_column('followup_claim_token')
        batch_op.drop_column('followup_claimed_until')

    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_slack_outbox_status_next_attempt_at')
    op.drop_table('slack_outbox')
    op.drop_table('alert_state')
