"""Indexes for the follow-up claim, the failure-rate alert and the stats at scale.

Measured by bench/queries.py at 1M actions and 200k resolutions (docs/BENCHMARKS.md):
the follow-up claim walked every sent or answered resolution (40 ms, growing), the
failure-rate alert seq-scanned ticket_resolution, and the per-type and per-team stats
read whole rows for a few columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:36:07.271944
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLLOWUP_OPEN = "followup_sent_at IS NULL AND response_received_at IS NULL"
ACTION_COLUMNS = ["action_type", "autonomous", "confidence_score", "rolled_back", "ticket_id"]


def upgrade() -> None:
    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_resolution_followup_due_at')
        batch_op.create_index('ix_ticket_resolution_followup_due_at', ['followup_due_at'],
                              unique=False, postgresql_where=sa.text(FOLLOWUP_OPEN),
                              sqlite_where=sa.text(FOLLOWUP_OPEN))
        batch_op.create_index('ix_ticket_resolution_response_received_at',
                              ['response_received_at'], unique=False)

    with op.batch_alter_table('action_history', schema=None) as batch_op:
        batch_op.drop_index('ix_action_history_executed_at')
        batch_op.create_index('ix_action_history_executed_at', ['executed_at'], unique=False,
                              postgresql_include=ACTION_COLUMNS)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_ticket_id', ['ticket_id'], unique=False,
                              postgresql_include=['assigned_team'])


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_ticket_id')

    with op.batch_alter_table('action_history', schema=None) as batch_op:
        batch_op.drop_index('ix_action_history_executed_at')
        batch_op.create_index('ix_action_history_executed_at', ['executed_at'], unique=False)

    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_resolution_response_received_at')
        batch_op.drop_index('ix_ticket_resolution_followup_due_at')
        batch_op.create_index('ix_ticket_resolution_followup_due_at', ['followup_due_at'],
                              unique=False)
