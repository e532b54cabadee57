"""Teams work in Slack: who has a ticket, people's TAKE and RESOLVE, their resolutions.

- tickets.assigned_to: the person on the team who has the ticket (a Slack user id).
- action_history.action_type may be TAKE or RESOLVE (the CHECK is replaced, with the
  values of models.ActionType as of this revision, written out as in 0004).
- person_resolution: a person's resolution and the requester's verdict on it, one row
  per RESOLVE action. ticket_resolution stays one row per ticket, the bot's.
- slack_outbox.person_resolution_id: the follow-up DM of a person's resolution; and an
  index on slack_outbox.ticket_id (a ticket's team notices are found again to redraw them).

The downgrade refuses, before any change, while TAKE or RESOLVE rows exist (the old
CHECK would refuse them), naming how many; person_resolution and its follow-ups go.

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-29 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ACTION_TYPES = ('AUTO_RESOLVE', 'ESCALATE', 'ASSIGN_TO_TEAM', 'REQUEST_CLARIFICATION',
                    'ROLLBACK', 'REOPEN', 'CONFIRM')
ACTION_TYPES = OLD_ACTION_TYPES + ('TAKE', 'RESOLVE')
CHECK = 'ck_action_history_action_type_known'


def _in(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({allowed})"


def _replace_check(values: Sequence[str]) -> None:
    # SQLite cannot alter a constraint: batch mode rebuilds the table (env.py turns
    # foreign keys off around that, so the rebuild cascades nothing).
    with op.batch_alter_table('action_history', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_='check')
        batch_op.create_check_constraint(op.f(CHECK), _in('action_type', values))


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assigned_to', sa.String(length=32), nullable=True))

    _replace_check(ACTION_TYPES)

    op.create_table(
        'person_resolution',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('action_id', sa.Uuid(), nullable=True),
        sa.Column('resolved_by', sa.String(length=32), nullable=False),
        sa.Column('team', sa.String(length=100), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
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
        sa.CheckConstraint('satisfaction_score IS NULL OR (satisfaction_score >= 1 AND satisfaction_score <= 5)',
                           name=op.f('ck_person_resolution_satisfaction_1_5')),
        sa.ForeignKeyConstraint(['action_id'], ['action_history.id'],
                                name=op.f('fk_person_resolution_action_id_action_history'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.ticket_id'],
                                name=op.f('fk_person_resolution_ticket_id_tickets'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_person_resolution')),
        sa.UniqueConstraint('action_id', name=op.f('uq_person_resolution_action_id')),
    )
    with op.batch_alter_table('person_resolution', schema=None) as batch_op:
        batch_op.create_index('ix_person_resolution_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_person_resolution_ticket_id', ['ticket_id'], unique=False)

    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_slack_outbox_ticket_id', ['ticket_id'], unique=False)
        batch_op.add_column(sa.Column('person_resolution_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_slack_outbox_person_resolution_id', ['person_resolution_id'],
                              unique=False, postgresql_where=sa.text('person_resolution_id IS NOT NULL'),
                              sqlite_where=sa.text('person_resolution_id IS NOT NULL'))
        batch_op.create_foreign_key(
            op.f('fk_slack_outbox_person_resolution_id_person_resolution'), 'person_resolution',
            ['person_resolution_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    found = op.get_bind().execute(sa.text(
        f"SELECT action_type, count(*) FROM action_history WHERE NOT ({_in('action_type', OLD_ACTION_TYPES)}) "
        "GROUP BY action_type ORDER BY action_type"
    )).all()
    if found:
        listed = ", ".join(f"{value!r} ({count} rows)" for value, count in found)
        raise RuntimeError(
            f"action_history holds people's actions the old CHECK would refuse: {listed}. "
            "Delete those rows (or stay on this revision); nothing was changed."
        )
    op.execute(sa.text("DELETE FROM slack_outbox WHERE person_resolution_id IS NOT NULL"))
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_slack_outbox_person_resolution_id_person_resolution'),
                                 type_='foreignkey')
        batch_op.drop_index('ix_slack_outbox_person_resolution_id')
        batch_op.drop_column('person_resolution_id')
        batch_op.drop_index('ix_slack_outbox_ticket_id')

    with op.batch_alter_table('person_resolution', schema=None) as batch_op:
        batch_op.drop_index('ix_person_resolution_ticket_id')
        batch_op.drop_index('ix_person_resolution_created_at')
    op.drop_table('person_resolution')

    _replace_check(OLD_ACTION_TYPES)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('assigned_to')
