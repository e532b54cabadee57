"""Initial schema: tickets, action_history, ticket_resolution, agent_calls, audit_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 09:11:13.829720
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('event_type', sa.String(length=50), nullable=False),
    sa.Column('actor_id', sa.String(length=32), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('action_id', sa.Uuid(), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_event_type_occurred_at', ['event_type', 'occurred_at'], unique=False)
    op.create_table('tickets',
    sa.Column('ticket_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('user_name', sa.String(length=255), nullable=True),
    sa.Column('department', sa.String(length=255), nullable=True),
    sa.Column('issue_type', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=50), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('agent_response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('agent_processed', sa.Boolean(), nullable=False),
    sa.Column('suggested_action', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('assigned_team', sa.String(length=100), nullable=True),
    sa.Column('awaiting_response_from', sa.String(length=20), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalation_priority', sa.String(length=10), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_event_id', sa.String(length=100), nullable=True),
    sa.Column('slack_team_id', sa.String(length=32), nullable=True),
    sa.Column('slack_channel_id', sa.String(length=32), nullable=True),
    sa.Column('slack_thread_ts', sa.String(length=50), nullable=False),
    sa.Column('slack_message_ts', sa.String(length=50), nullable=True),
    sa.CheckConstraint("status IN ('new', 'open', 'in_progress', 'awaiting_user', 'escalated', 'resolved')", name=op.f('ck_tickets_status_known')),
    sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_tickets')),
    sa.UniqueConstraint('source_event_id', name=op.f('uq_tickets_source_event_id'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_assigned_team', ['assigned_team'], unique=False)
        batch_op.create_index('ix_tickets_status_created_at', ['status', 'created_at'], unique=False)
    op.create_table('action_history',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('action_type', sa.String(length=50), nullable=False),
    sa.Column('action_params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('executed_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('executed_by', sa.String(length=50), nullable=False),
    sa.Column('autonomous', sa.Boolean(), nullable=False),
    sa.Column('confidence_score', sa.Double(), nullable=True),
    sa.Column('agent_reasoning', sa.Text(), nullable=False),
    sa.Column('rollback_possible', sa.Boolean(), nullable=False),
    sa.Column('rollback_steps', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('rolled_back', sa.Boolean(), nullable=False),
    sa.Column('rolled_back_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rolled_back_by', sa.String(length=32), nullable=True),
    sa.Column('rollback_reason', sa.Text(), nullable=False),
    sa.Column('rollback_of', sa.Uuid(), nullable=True),
    sa.Column('before_state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('after_state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.CheckConstraint('confidence_score IS NULL OR (confidence_score >= 0 AND confidence_score <= 1)', name=op.f('ck_action_history_confidence_0_1')),
    sa.ForeignKeyConstraint(['rollback_of'], ['action_history.id'], name=op.f('fk_action_history_rollback_of_action_history'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'], name=op.f('fk_action_history_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_history'))
    )
    with op.batch_alter_table('action_history', schema=None) as batch_op:
        batch_op.create_index('ix_action_history_autonomous_executed_at', ['autonomous', 'executed_at'], unique=False)
        batch_op.create_index('ix_action_history_executed_at', ['executed_at'], unique=False)
        batch_op.create_index('ix_action_history_rolled_back', ['rolled_back'], unique=False)
        batch_op.create_index('ix_action_history_rolled_back_at', ['rolled_back_at'], unique=False)
        batch_op.create_index('ix_action_history_ticket_id_action_type', ['ticket_id', 'action_type'], unique=False)
    op.create_table('agent_calls',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('called_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('agent', sa.String(length=20), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('latency_ms', sa.Double(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'], name=op.f('fk_agent_calls_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_calls'))
    )
    with op.batch_alter_table('agent_calls', schema=None) as batch_op:
        batch_op.create_index('ix_agent_calls_called_at_ok', ['called_at', 'ok'], unique=False)
    op.create_table('ticket_resolution',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('action_id', sa.Uuid(), nullable=True),
    sa.Column('autonomous_action', sa.String(length=50), nullable=False),
    sa.Column('resolution_confirmed', sa.Boolean(), nullable=True),
    sa.Column('user_feedback_text', sa.Text(), nullable=False),
    sa.Column('satisfaction_score', sa.Integer(), nullable=True),
    sa.Column('followup_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('followup_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reopened', sa.Boolean(), nullable=False),
    sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reopened_reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('satisfaction_score IS NULL OR (satisfaction_score >= 1 AND satisfaction_score <= 5)', name=op.f('ck_ticket_resolution_satisfaction_1_5')),
    sa.ForeignKeyConstraint(['action_id'], ['action_history.id'], name=op.f('fk_ticket_resolution_action_id_action_history'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'], name=op.f('fk_ticket_resolution_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_resolution')),
    sa.UniqueConstraint('ticket_id', name=op.f('uq_ticket_resolution_ticket_id'))
    )
    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_resolution_autonomous_action_resolution_confirmed', ['autonomous_action', 'resolution_confirmed'], unique=False)
        batch_op.create_index('ix_ticket_resolution_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_ticket_resolution_followup_due_at', ['followup_due_at'], unique=False)
        batch_op.create_index('ix_ticket_resolution_satisfaction_score', ['satisfaction_score'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_resolution_satisfaction_score')
        batch_op.drop_index('ix_ticket_resolution_followup_due_at')
        batch_op.drop_index('ix_ticket_resolution_created_at')
        batch_op.drop_index('ix_ticket_resolution_autonomous_action_resolution_confirmed')
    op.drop_table('ticket_resolution')
    with op.batch_alter_table('agent_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_calls_called_at_ok')
    op.drop_table('agent_calls')
    with op.batch_alter_table('action_history', schema=None) as batch_op:
        batch_op.drop_index('ix_action_history_ticket_id_action_type')
        batch_op.drop_index('ix_action_history_rolled_back_at')
        batch_op.drop_index('ix_action_history_rolled_back')
        batch_op.drop_index('ix_action_history_executed_at')
        batch_op.drop_index('ix_action_history_autonomous_executed_at')
    op.drop_table('action_history')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_status_created_at')
        batch_op.drop_index('ix_tickets_assigned_team')
    op.drop_table('tickets')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_event_type_occurred_at')
    op.drop_table('audit_events')
