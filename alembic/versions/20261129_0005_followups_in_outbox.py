"""Follow-up DMs are outbox rows: one claim, one backoff, one reconcile.

slack_outbox gains `resolution_id` (the resolution a follow-up asks about), `recipient`
(a DM, opened when sent; `channel` may then be empty) and `cancel_reason`, with CHECK
constraints on `status` and `purpose` (the values of models.OutboxStatus and
OutboxPurpose as of this revision; rows holding another value stop the upgrade before
any change, with a message that names them, as in 0004). Every follow-up of an existing resolution moves
into the outbox: owed ones as pending rows due at `followup_due_at` (an attempt in
progress keeps its count and claim, so the new code reconciles before sending), sent
ones as sent rows (where the DM went), given-up ones as failed rows. Then the claim
columns on ticket_resolution, and the partial index only the old claim read, go.
`followup_due_at` and `followup_sent_at` stay: reports read them.

The downgrade puts the claim columns back, filled from the outbox, and removes the
follow-up rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: a later change to the enums brings its own migration.
STATUSES = ('pending', 'sent', 'failed', 'cancelled')
PURPOSES = ('ticket_outcome', 'notice', 'followup')
FOLLOWUP_OPEN = "followup_sent_at IS NULL AND response_received_at IS NULL"
CLAIM_COLUMNS = ('followup_claimed_until', 'followup_claim_token', 'followup_attempts',
                 'followup_channel', 'followup_message_ts', 'followup_last_error')


def _in(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({allowed})"


def _refuse_unknown(column: str, values: Sequence[str]) -> None:
    found = op.get_bind().execute(sa.text(
        f"SELECT {column}, count(*) FROM slack_outbox WHERE NOT ({_in(column, values)}) "
        f"GROUP BY {column} ORDER BY {column}"
    )).all()
    if found:
        listed = ", ".join(f"{value!r} ({count} rows)" for value, count in found)
        raise RuntimeError(
            f"slack_outbox.{column} holds values the new CHECK would refuse: {listed}. "
            f"Known values: {', '.join(values)}. Correct or delete those rows, then "
            "upgrade again; nothing was changed."
        )


# Lightweight tables for the data steps (never the models: they move on).
outbox = sa.table(
    'slack_outbox',
    sa.column('id', sa.Integer), sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('ticket_id', sa.Integer), sa.column('resolution_id', sa.Integer),
    sa.column('purpose', sa.String), sa.column('channel', sa.String),
    sa.column('recipient', sa.String), sa.column('text', sa.Text),
    sa.column('status', sa.String), sa.column('attempts', sa.Integer),
    sa.column('next_attempt_at', sa.DateTime(timezone=True)),
    sa.column('claimed_until', sa.DateTime(timezone=True)), sa.column('claim_token', sa.String),
    sa.column('sent_at', sa.DateTime(timezone=True)), sa.column('sent_channel', sa.String),
    sa.column('message_ts', sa.String), sa.column('last_error', sa.Text),
)
resolution = sa.table(
    'ticket_resolution',
    sa.column('id', sa.Integer), sa.column('ticket_id', sa.Integer), sa.column('action_id'),
    sa.column('resolution_confirmed', sa.Boolean), sa.column('satisfaction_score', sa.Integer),
    sa.column('followup_due_at', sa.DateTime(timezone=True)),
    sa.column('followup_sent_at', sa.DateTime(timezone=True)),
    sa.column('response_received_at', sa.DateTime(timezone=True)),
    sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('followup_claimed_until', sa.DateTime(timezone=True)),
    sa.column('followup_claim_token', sa.String), sa.column('followup_attempts', sa.Integer),
    sa.column('followup_channel', sa.String), sa.column('followup_message_ts', sa.String),
    sa.column('followup_last_error', sa.Text),
)
tickets = sa.table('tickets', sa.column('ticket_id', sa.Integer), sa.column('user_id', sa.String))
actions = sa.table('action_history', sa.column('id'), sa.column('rolled_back', sa.Boolean))


def upgrade() -> None:
    _refuse_unknown('status', STATUSES)
    _refuse_unknown('purpose', PURPOSES)
    # On SQLite, batch mode rebuilds a table and drops the old one; were foreign keys on,
    # dropping ticket_resolution while slack_outbox refers to it ON DELETE CASCADE would
    # delete the follow-ups just moved. env.py turns them off while migrating; the
    # foreign key also comes last, so this does not depend on it.
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('recipient', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.String(length=40), nullable=True))
        batch_op.alter_column('channel', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index('ix_slack_outbox_resolution_id', ['resolution_id'], unique=False,
                              postgresql_where=sa.text('resolution_id IS NOT NULL'),
                              sqlite_where=sa.text('resolution_id IS NOT NULL'))
        batch_op.create_check_constraint(op.f('ck_slack_outbox_status_known'), _in('status', STATUSES))
        batch_op.create_check_constraint(op.f('ck_slack_outbox_purpose_known'), _in('purpose', PURPOSES))
        batch_op.create_check_constraint(op.f('ck_slack_outbox_destination'),
                                         'channel IS NOT NULL OR recipient IS NOT NULL')

    _followups_into_outbox()

    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_resolution_followup_due_at')
        for column in reversed(CLAIM_COLUMNS):
            batch_op.drop_column(column)

    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.create_foreign_key(
            op.f('fk_slack_outbox_resolution_id_ticket_resolution'), 'ticket_resolution',
            ['resolution_id'], ['id'], ondelete='CASCADE')


def _followups_into_outbox() -> None:
    r, t, a = resolution, tickets, actions
    rolled_back = sa.func.coalesce(a.c.rolled_back, sa.false())
    answered = sa.or_(r.c.response_received_at.is_not(None), r.c.resolution_confirmed.is_not(None),
                      r.c.satisfaction_score.is_not(None))
    sent = r.c.followup_sent_at.is_not(None)
    owed = sa.and_(r.c.followup_due_at.is_not(None), ~sent, ~answered, a.c.id.is_not(None),
                   rolled_back == sa.false())
    # The old code gave up by clearing the due time and keeping the error.
    given_up = sa.and_(r.c.followup_due_at.is_(None), ~sent, r.c.followup_last_error != '')
    for status, which, extra in (
        ('pending', owed, {
            'next_attempt_at': r.c.followup_due_at, 'claimed_until': r.c.followup_claimed_until,
            'claim_token': r.c.followup_claim_token}),
        ('sent', sent, {
            'next_attempt_at': sa.func.coalesce(r.c.followup_due_at, r.c.followup_sent_at),
            'sent_at': r.c.followup_sent_at, 'sent_channel': r.c.followup_channel,
            'message_ts': r.c.followup_message_ts}),
        ('failed', given_up, {'next_attempt_at': r.c.created_at}),
    ):
        columns = {
            'created_at': r.c.created_at, 'ticket_id': r.c.ticket_id, 'resolution_id': r.c.id,
            'purpose': sa.literal('followup'), 'recipient': t.c.user_id, 'text': sa.literal(''),
            'status': sa.literal(status), 'attempts': r.c.followup_attempts,
            'last_error': r.c.followup_last_error, **extra,
        }
        op.execute(outbox.insert().from_select(
            list(columns),
            sa.select(*[value.label(name) for name, value in columns.items()])
            .select_from(r.join(t, t.c.ticket_id == r.c.ticket_id)
                         .outerjoin(a, a.c.id == r.c.action_id))
            .where(which)
            .order_by(r.c.followup_due_at, r.c.id),
        ))


def downgrade() -> None:
    # The foreign key goes first, for the reason upgrade() adds it last.
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_slack_outbox_resolution_id_ticket_resolution'),
                                 type_='foreignkey')

    with op.batch_alter_table('ticket_resolution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('followup_claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('followup_claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('followup_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('followup_channel', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('followup_message_ts', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('followup_last_error', sa.Text(), server_default='', nullable=False))
        batch_op.create_index('ix_ticket_resolution_followup_due_at', ['followup_due_at'],
                              unique=False, postgresql_where=sa.text(FOLLOWUP_OPEN),
                              sqlite_where=sa.text(FOLLOWUP_OPEN))

    _followups_out_of_outbox()

    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_slack_outbox_destination'), type_='check')
        batch_op.drop_constraint(op.f('ck_slack_outbox_purpose_known'), type_='check')
        batch_op.drop_constraint(op.f('ck_slack_outbox_status_known'), type_='check')
        batch_op.drop_index('ix_slack_outbox_resolution_id')
        batch_op.alter_column('channel', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('recipient')
        batch_op.drop_column('resolution_id')


def _followups_out_of_outbox() -> None:
    r, o = resolution, outbox

    def latest(column, status: str):
        # A resolution may have several follow-up rows (resolved again after a
        # rollback); the newest one in `status` speaks for it.
        return (sa.select(column).where(o.c.resolution_id == r.c.id, o.c.purpose == 'followup',
                                        o.c.status == status)
                .order_by(o.c.id.desc()).limit(1).scalar_subquery())

    def has(status: str):
        return sa.exists().where(o.c.resolution_id == r.c.id, o.c.purpose == 'followup',
                                 o.c.status == status)

    op.execute(r.update().where(has('pending')).values(
        followup_attempts=latest(o.c.attempts, 'pending'),
        followup_claimed_until=latest(o.c.claimed_until, 'pending'),
        followup_claim_token=latest(o.c.claim_token, 'pending'),
        followup_last_error=latest(o.c.last_error, 'pending'),
    ))
    op.execute(r.update().where(has('sent')).values(
        followup_attempts=latest(o.c.attempts, 'sent'),
        followup_channel=latest(o.c.sent_channel, 'sent'),
        followup_message_ts=latest(o.c.message_ts, 'sent'),
    ))
    # The old code's way of giving up: no due time, the error kept.
    op.execute(r.update().where(has('failed'), ~has('pending'), ~has('sent')).values(
        followup_due_at=None,
        followup_attempts=latest(o.c.attempts, 'failed'),
        followup_last_error=latest(o.c.last_error, 'failed'),
    ))
    # Only follow-ups have no channel or a `cancelled` status: none is left after this.
    op.execute(o.delete().where(o.c.purpose == 'followup'))
