"""Surveys: follow-ups folded into a person's DM (SURVEY_COOLDOWN), and NPS answers.

Revision ID: 0018n
Revises: 0017
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018n'
down_revision: str | None = '0018r'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEADS = "purpose = 'followup' AND folded_into IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('folded_into', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_slack_outbox_folded_into_slack_outbox'),
                                    'slack_outbox', ['folded_into'], ['id'])
        batch_op.create_index('ix_slack_outbox_message_ts', ['message_ts'], unique=False,
                              postgresql_where=sa.text('message_ts IS NOT NULL'),
                              sqlite_where=sa.text('message_ts IS NOT NULL'))
        batch_op.create_index('ix_slack_outbox_followup_recipient', ['recipient', 'sent_at'],
                              unique=False, postgresql_where=sa.text(_HEADS),
                              sqlite_where=sa.text(_HEADS))
    op.create_table(
        'nps_answers',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('score IS NULL OR (score >= 0 AND score <= 10)',
                           name=op.f('ck_nps_answers_score_range')),
        sa.ForeignKeyConstraint(['outbox_id'], ['slack_outbox.id'],
                                name=op.f('fk_nps_answers_outbox_id_slack_outbox')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_nps_answers')),
        sa.UniqueConstraint('outbox_id', name=op.f('uq_nps_answers_outbox_id')),
    )
    with op.batch_alter_table('nps_answers', schema=None) as batch_op:
        batch_op.create_index('ix_nps_answers_user_id_asked_at', ['user_id', 'asked_at'], unique=False)
        batch_op.create_index('ix_nps_answers_answered_at', ['answered_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('nps_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_nps_answers_answered_at')
        batch_op.drop_index('ix_nps_answers_user_id_asked_at')
    op.drop_table('nps_answers')
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_slack_outbox_followup_recipient')
        batch_op.drop_index('ix_slack_outbox_message_ts')
        batch_op.drop_constraint(op.f('fk_slack_outbox_folded_into_slack_outbox'), type_='foreignkey')
        batch_op.drop_column('folded_into')
