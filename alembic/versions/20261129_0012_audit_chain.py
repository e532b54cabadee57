"""The audit chain; tickets no longer take their history with them.

- audit_chain: one entry per action_history and audit_events row (models.audit_chain).
  Existing rows are chained here, oldest first (by their time, then actions before
  events, then id), unsigned: `resolvemeq audit verify` passes on an upgraded database,
  and entries written after the upgrade are signed when AUDIT_SIGNING_KEY is set.
- The foreign keys from action_history, ticket_resolution, person_resolution and
  slack_outbox to tickets lose ON DELETE CASCADE: a ticket's deletion is refused
  rather than erasing its action history (erasure is redaction, RETENTION_DAYS).
- slack_outbox.purpose may be `audit_anchor` (the chain's head posted to AUDIT_CHANNEL);
  alert_state.rule may be `backup_failed`. Values written out, as in 0007.

The backfill computes digests with bot.domain.audit_chain, the code `audit verify`
checks them with: a copy here could drift from it. Its content format is versioned
(CONTENT_VERSION), so a later change of the format does not change what this wrote.

The downgrade drops the chain, puts the cascades back, files anchor posts as notices
and forgets the backup rule's state.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = {
    ('slack_outbox', 'purpose'): ('ticket_outcome', 'notice', 'alert', 'followup'),
    ('alert_state', 'rule'): ('failure_rate', 'low_confidence', 'agent_errors', 'rollbacks',
                              'autonomy_cap', 'limiter_unavailable', 'slack_posts_held'),
}
NEW = {
    ('slack_outbox', 'purpose'): (*OLD[('slack_outbox', 'purpose')], 'audit_anchor'),
    ('alert_state', 'rule'): (*OLD[('alert_state', 'rule')], 'backup_failed'),
}
# (table, foreign key name) of every reference to tickets that cascaded.
TICKET_FKS = (
    ('action_history', 'fk_action_history_ticket_id_tickets'),
    ('ticket_resolution', 'fk_ticket_resolution_ticket_id_tickets'),
    ('person_resolution', 'fk_person_resolution_ticket_id_tickets'),
    ('slack_outbox', 'fk_slack_outbox_ticket_id_tickets'),
)
BATCH = 1000


def _in(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({allowed})"


def _replace_checks(checks: dict[tuple[str, str], Sequence[str]]) -> None:
    for (table, column), values in checks.items():
        # SQLite cannot alter a constraint: batch mode rebuilds the table (env.py turns
        # foreign keys off around that, so the rebuild cascades nothing).
        with op.batch_alter_table(table, schema=None) as batch_op:
            name = op.f(f'ck_{table}_{column}_known')
            batch_op.drop_constraint(name, type_='check')
            batch_op.create_check_constraint(name, _in(column, values))


def _ticket_fks(ondelete: str | None) -> None:
    for table, name in TICKET_FKS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(name), type_='foreignkey')
            batch_op.create_foreign_key(op.f(name), 'tickets', ['ticket_id'], ['ticket_id'],
                                        ondelete=ondelete)


def _backfill() -> None:
    from bot.domain import audit_chain
    from models import ActionHistory, AuditEvent

    bind = op.get_bind()
    # Every row's place first (small tuples, in chain order), then the rows a batch at
    # a time, so memory holds one batch of rows.
    places = []
    for table, model, at in ((audit_chain.ACTIONS, ActionHistory, 'executed_at'),
                             (audit_chain.EVENTS, AuditEvent, 'occurred_at')):
        columns = model.__table__.c
        for row_id, when in bind.execute(sa.select(columns.id, columns[at])):
            places.append((audit_chain.chain_order(table, row_id, when), table, row_id))
    places.sort()
    for start in range(0, len(places), BATCH):
        batch = places[start:start + BATCH]
        read = {table: audit_chain.read_rows(bind, table, [row_id for _, t, row_id in batch if t == table])
                for table in (audit_chain.ACTIONS, audit_chain.EVENTS)}
        digests = [audit_chain.digests_of(table, read[table][row_id]) for _, table, row_id in batch]
        audit_chain.append(bind, digests, key=None)


def upgrade() -> None:
    op.create_table(
        'audit_chain',
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('action_id', sa.Uuid(), nullable=True),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('text_digest', sa.String(length=64), nullable=False),
        sa.Column('content_digest', sa.String(length=64), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('signature', sa.String(length=64), nullable=True),
        sa.Column('redacted_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('(action_id IS NULL) <> (event_id IS NULL)',
                           name=op.f('ck_audit_chain_one_row')),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_chain')),
        sa.UniqueConstraint('action_id', name=op.f('uq_audit_chain_action_id')),
        sa.UniqueConstraint('event_id', name=op.f('uq_audit_chain_event_id')),
    )
    _ticket_fks(None)
    _replace_checks(NEW)
    _backfill()


def downgrade() -> None:
    op.execute(sa.text("UPDATE slack_outbox SET purpose = 'notice' WHERE purpose = 'audit_anchor'"))
    op.execute(sa.text("DELETE FROM alert_state WHERE rule = 'backup_failed'"))
    _replace_checks(OLD)
    _ticket_fks('CASCADE')
    op.drop_table('audit_chain')
