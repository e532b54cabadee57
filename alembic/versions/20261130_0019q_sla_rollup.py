"""SLA stats rollup by UTC day (bot.domain.sla_rollup), and the triggers that mark a
day's SLA figures changed.

`sla_rollup` holds, per UTC day of `ticket_sla.started_at`, the day's own figures
(kind 1) and the sum of every rolled day before it (kind 2, a running total), per team,
priority and histogram bin. `sla_dirty` is appended to by triggers in the same
transaction as every write to `ticket_sla` that can move a figure: the row's start
time, whose day is then counted live until the job rolls it again. Empty at upgrade:
the job rolls the history on its first passes (until then everything is counted live).
Also an index for the latest feedback texts `/resolution-stats` shows.

Revision ID: 0019q
Revises: 0018a
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0019q'
down_revision: str | None = '0018a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns the SLA figures read (bot.domain.sla.sla_stats); an update of any other
# (elapsed_s, next_check_at, updated_at, the warnings) marks nothing.
WATCHED = ('started_at', 'team', 'priority', 'response_s', 'resolution_s', 'response_target_s',
           'resolution_target_s', 'response_breached_at', 'resolution_breached_at')

FEEDBACK = ('ticket_resolution', 'person_resolution')

PG_FUNCTION = """
CREATE FUNCTION sla_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO sla_dirty (started_at) VALUES (OLD.started_at);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO sla_dirty (started_at) VALUES (NEW.started_at);
    END IF;
    RETURN NULL;
END $$;
"""


def _changed(distinct: str) -> str:
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in WATCHED)


def _pg() -> list[str]:
    return [
        PG_FUNCTION,
        "CREATE TRIGGER sla_dirty_write AFTER INSERT OR DELETE ON ticket_sla "
        "FOR EACH ROW EXECUTE FUNCTION sla_mark_dirty()",
        f"CREATE TRIGGER sla_dirty_update AFTER UPDATE ON ticket_sla FOR EACH ROW "
        f"WHEN ({_changed('IS DISTINCT FROM')}) EXECUTE FUNCTION sla_mark_dirty()",
    ]


def _sqlite() -> list[str]:
    return [
        "CREATE TRIGGER sla_dirty_insert AFTER INSERT ON ticket_sla BEGIN "
        "INSERT INTO sla_dirty (started_at) VALUES (NEW.started_at); END",
        "CREATE TRIGGER sla_dirty_delete AFTER DELETE ON ticket_sla BEGIN "
        "INSERT INTO sla_dirty (started_at) VALUES (OLD.started_at); END",
        f"CREATE TRIGGER sla_dirty_update AFTER UPDATE ON ticket_sla WHEN {_changed('IS NOT')} BEGIN "
        "INSERT INTO sla_dirty (started_at) VALUES (OLD.started_at); "
        "INSERT INTO sla_dirty (started_at) VALUES (NEW.started_at); END",
    ]


def upgrade() -> None:
    op.create_table(
        'sla_rollup',
        sa.Column('kind', sa.SmallInteger(), nullable=False),
        sa.Column('day', sa.DateTime(timezone=True), nullable=False),
        sa.Column('team', sa.String(length=100), nullable=False),
        sa.Column('priority', sa.String(length=10), nullable=False),
        sa.Column('bin', sa.Integer(), nullable=False),
        # int4: their sums are int8 on PostgreSQL (a sum of int8 is NUMERIC, slower).
        *[sa.Column(f'n{i}', sa.Integer(), nullable=False) for i in range(5)],
        sa.PrimaryKeyConstraint('kind', 'day', 'team', 'priority', 'bin', name=op.f('pk_sla_rollup')),
    )
    op.create_table(
        'sla_rollup_days',
        sa.Column('day', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rolled_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_sla_rollup_days')),
    )
    op.create_table(
        'sla_dirty',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_dirty')),
    )
    for statement in (_pg() if op.get_bind().dialect.name == 'postgresql' else _sqlite()):
        op.execute(statement)
    # The latest "What didn't work?" texts (analytics.latest_comments): without it, a
    # scan of every resolution for the five newest with a text.
    for table in FEEDBACK:
        op.create_index(op.f(f'ix_{table}_feedback_updated_at'), table, ['updated_at', 'id'],
                        postgresql_where=sa.text("user_feedback_text <> ''"),
                        sqlite_where=sa.text("user_feedback_text <> ''"))


def downgrade() -> None:
    for table in FEEDBACK:
        op.drop_index(op.f(f'ix_{table}_feedback_updated_at'), table_name=table)
    if op.get_bind().dialect.name == 'postgresql':
        for name in ('sla_dirty_write', 'sla_dirty_update'):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON ticket_sla")
        op.execute("DROP FUNCTION IF EXISTS sla_mark_dirty()")
    else:
        for name in ('sla_dirty_insert', 'sla_dirty_delete', 'sla_dirty_update'):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('sla_dirty')
    op.drop_table('sla_rollup_days')
    op.drop_table('sla_rollup')
