"""Two-person rollback: rollback_requests, one row per request for a second person's
approval (who asked, why, the diff they saw, the decision, the approvals message).

At most one pending request per action (a partial unique index). The downgrade drops
the table, and with it the record of who approved which rollback (the ROLLBACK rows
keep `approved_by` in their action_params).

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-29 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0011'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# models.RequestStatus as of this revision, written out as in 0004.
STATUSES = ('pending', 'approved', 'rejected', 'expired')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _in(column: str) -> str:
    allowed = ", ".join(f"'{value}'" for value in STATUSES)
    return f"{column} IN ({allowed})"


def upgrade() -> None:
    op.create_table(
        'rollback_requests',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('action_id', sa.Uuid(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('requested_by', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('diff', JSON, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('decided_by', sa.String(length=32), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=False),
        sa.Column('rollback_id', sa.Uuid(), nullable=True),
        sa.Column('outbox_id', sa.Integer(), nullable=True),
        sa.Column('shown_status', sa.String(length=10), nullable=False),
        sa.CheckConstraint(_in('status'), name=op.f('ck_rollback_requests_status_known')),
        sa.CheckConstraint(_in('shown_status'), name=op.f('ck_rollback_requests_shown_status_known')),
        sa.ForeignKeyConstraint(['action_id'], ['action_history.id'],
                                name=op.f('fk_rollback_requests_action_id_action_history'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['rollback_id'], ['action_history.id'],
                                name=op.f('fk_rollback_requests_rollback_id_action_history'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['outbox_id'], ['slack_outbox.id'],
                                name=op.f('fk_rollback_requests_outbox_id_slack_outbox'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollback_requests')),
    )
    with op.batch_alter_table('rollback_requests', schema=None) as batch_op:
        batch_op.create_index('ix_rollback_requests_status_expires_at', ['status', 'expires_at'],
                              unique=False)
        batch_op.create_index('uq_rollback_requests_pending_action_id', ['action_id'], unique=True,
                              postgresql_where=sa.text("status = 'pending'"),
                              sqlite_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    with op.batch_alter_table('rollback_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_rollback_requests_pending_action_id')
        batch_op.drop_index('ix_rollback_requests_status_expires_at')
    op.drop_table('rollback_requests')
