"""A/B experiments on AUTONOMY_THRESHOLD: threshold_experiments (arms, started, stopped
by whom and why) and, on action_history, the experiment and arm each decision used.

Both new columns are NULL for every existing row (no experiment ran before this
revision), so the upgrade writes no data. The downgrade drops the columns and the
table: the experiments' results are lost with them.

Revision ID: 0018a
Revises: 0017
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018a'
down_revision: str | None = '0018n'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# models.ExperimentStop as of this revision.
STOP_CAUSES = ('admin', 'unset', 'changed')
PARTIAL = sa.text('experiment_id IS NOT NULL')
FK = 'fk_action_history_experiment_id_threshold_experiments'


def upgrade() -> None:
    causes = ", ".join(f"'{cause}'" for cause in STOP_CAUSES)
    op.create_table(
        'threshold_experiments',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('arms', sa.String(length=200), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('running', sa.Boolean(), nullable=True),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stopped_by', sa.String(length=32), nullable=True),
        sa.Column('stop_cause', sa.String(length=10), nullable=True),
        sa.Column('stop_reason', sa.Text(), nullable=False),
        sa.CheckConstraint(f'stop_cause IN ({causes})',
                           name=op.f('ck_threshold_experiments_stop_cause_known')),
        sa.CheckConstraint('running IS NULL OR running',
                           name=op.f('ck_threshold_experiments_running_or_null')),
        sa.CheckConstraint('(running IS NULL) = (stopped_at IS NOT NULL)',
                           name=op.f('ck_threshold_experiments_stopped_when_not_running')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_threshold_experiments')),
        sa.UniqueConstraint('running', name=op.f('uq_threshold_experiments_running')),
    )
    # ADD COLUMN, never a rebuild: action_history is the largest table. SQLite alters no
    # constraint, but takes a named REFERENCES clause on a column added NULL.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(f'ALTER TABLE action_history ADD COLUMN experiment_id INTEGER '
                   f'CONSTRAINT {FK} REFERENCES threshold_experiments (id)')
    else:
        op.add_column('action_history', sa.Column('experiment_id', sa.Integer(), nullable=True))
        op.create_foreign_key(FK, 'action_history', 'threshold_experiments', ['experiment_id'], ['id'])
    op.add_column('action_history', sa.Column('threshold_arm', sa.Double(), nullable=True))
    op.create_index('ix_action_history_experiment_id', 'action_history',
                    ['experiment_id', 'threshold_arm', 'ticket_id'], unique=False,
                    postgresql_include=['id', 'action_type', 'autonomous', 'rolled_back', 'executed_at'],
                    postgresql_where=PARTIAL, sqlite_where=PARTIAL)


def downgrade() -> None:
    op.drop_index('ix_action_history_experiment_id', table_name='action_history',
                  postgresql_where=PARTIAL, sqlite_where=PARTIAL)
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(FK, 'action_history', type_='foreignkey')
    op.drop_column('action_history', 'threshold_arm')
    op.drop_column('action_history', 'experiment_id')
    op.drop_table('threshold_experiments')
