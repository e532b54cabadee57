"""The autonomy switch: autonomy_state (one row: mode, reason, who changed it and when)
and shadow_decisions (what the bot would have done alone in shadow mode, beside the
triage action it took instead).

No row is written: no row means `on`, as before this revision. The downgrade drops
both tables (the mode changes stay in audit_events).

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# models.AutonomyMode and models.ActionType as of this revision, written out as in 0004.
MODES = ('on', 'paused', 'shadow')
ACTION_TYPES = ('AUTO_RESOLVE', 'ESCALATE', 'ASSIGN_TO_TEAM', 'REQUEST_CLARIFICATION', 'ROLLBACK', 'REOPEN',
                'CONFIRM', 'TAKE', 'RESOLVE')


def _in(column: str, values: tuple[str, ...]) -> str:
    allowed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({allowed})"


def upgrade() -> None:
    op.create_table(
        'autonomy_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('mode', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('changed_by', sa.String(length=32), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in('mode', MODES), name=op.f('ck_autonomy_state_mode_known')),
        sa.CheckConstraint('id = 1', name=op.f('ck_autonomy_state_single_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_autonomy_state')),
    )
    op.create_table(
        'shadow_decisions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('action_id', sa.Uuid(), nullable=False),
        sa.Column('action_type', sa.String(length=50), nullable=False),
        sa.Column('team', sa.String(length=100), nullable=True),
        sa.Column('confidence_score', sa.Double(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_in('action_type', ACTION_TYPES),
                           name=op.f('ck_shadow_decisions_action_type_known')),
        sa.CheckConstraint('confidence_score IS NULL OR (confidence_score >= 0 AND confidence_score <= 1)',
                           name=op.f('ck_shadow_decisions_confidence_0_1')),
        sa.ForeignKeyConstraint(['action_id'], ['action_history.id'],
                                name=op.f('fk_shadow_decisions_action_id_action_history')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'],
                                name=op.f('fk_shadow_decisions_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_decisions')),
        sa.UniqueConstraint('action_id', name=op.f('uq_shadow_decisions_action_id')),
    )
    with op.batch_alter_table('shadow_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_shadow_decisions_decided_at', ['decided_at'], unique=False)
        batch_op.create_index('ix_shadow_decisions_ticket_id', ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('shadow_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_shadow_decisions_ticket_id')
        batch_op.drop_index('ix_shadow_decisions_decided_at')
    op.drop_table('shadow_decisions')
    op.drop_table('autonomy_state')
