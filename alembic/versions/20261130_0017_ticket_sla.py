"""SLA clocks: one ticket_sla row per ticket (bot.domain.sla, the check_sla job).

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-30 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# models.SlaPriority as of this revision.
PRIORITIES = ('critical', 'high', 'normal')


def upgrade() -> None:
    allowed = ", ".join(f"'{value}'" for value in PRIORITIES)
    op.create_table(
        'ticket_sla',
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('priority', sa.String(length=10), nullable=False),
        sa.Column('team', sa.String(length=100), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('response_target_s', sa.Integer(), nullable=False),
        sa.Column('resolution_target_s', sa.Integer(), nullable=False),
        sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('response_s', sa.Integer(), nullable=True),
        sa.Column('resolution_s', sa.Integer(), nullable=True),
        sa.Column('elapsed_s', sa.Integer(), nullable=False),
        sa.Column('response_warned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('response_breached_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolution_warned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolution_breached_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('settled', sa.Boolean(), nullable=False),
        sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"priority IN ({allowed})", name=op.f('ck_ticket_sla_priority_known')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'],
                                name=op.f('fk_ticket_sla_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_ticket_sla')),
    )
    with op.batch_alter_table('ticket_sla', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_sla_started_at', ['started_at'], unique=False)
        batch_op.create_index('ix_ticket_sla_settled', ['settled'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ticket_sla', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_sla_settled')
        batch_op.drop_index('ix_ticket_sla_started_at')
    op.drop_table('ticket_sla')
