"""Stats rollup by UTC day and hour, and the triggers that mark changed tickets dirty.

Revision ID: 0018r
Revises: 0017
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018r'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The writes that can move a figure (bot.domain.rollup): the table, the row's own time,
# and the columns whose update matters ('' : every insert and delete, those updates).
WATCHED = (
    ('action_history', 'executed_at',
     'ticket_id, action_type, executed_at, autonomous, confidence_score, rolled_back'),
    ('ticket_resolution', 'created_at',
     'ticket_id, action_id, created_at, resolution_confirmed, reopened, satisfaction_score'),
    ('person_resolution', 'created_at',
     'ticket_id, action_id, team, created_at, resolution_confirmed, reopened, satisfaction_score'),
)

PG_FUNCTION = """
CREATE FUNCTION stats_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV[0]: the row's own time column ('' for tickets: the ticket alone).
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO stats_dirty (ticket_id, at) VALUES (OLD.ticket_id,
            CASE WHEN TG_ARGV[0] = '' THEN NULL
                 ELSE (to_jsonb(OLD) ->> TG_ARGV[0])::timestamptz END);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO stats_dirty (ticket_id, at) VALUES (NEW.ticket_id,
            CASE WHEN TG_ARGV[0] = '' THEN NULL
                 ELSE (to_jsonb(NEW) ->> TG_ARGV[0])::timestamptz END);
    END IF;
    RETURN NULL;
END $$;
"""


def _pg_triggers() -> list[str]:
    out = [PG_FUNCTION]
    for table, at, columns in WATCHED:
        out.append(f"CREATE TRIGGER stats_dirty_{table} AFTER INSERT OR DELETE OR UPDATE OF "
                   f"{columns} ON {table} FOR EACH ROW EXECUTE FUNCTION stats_mark_dirty('{at}')")
    out.append("CREATE TRIGGER stats_dirty_tickets AFTER UPDATE OF assigned_team ON tickets "
               "FOR EACH ROW EXECUTE FUNCTION stats_mark_dirty('')")
    return out


def _sqlite_triggers() -> list[str]:
    def body(*rows: str) -> str:
        return " ".join(f"INSERT INTO stats_dirty (ticket_id, at) VALUES ({row});" for row in rows)

    out = []
    for table, at, columns in WATCHED:
        out += [
            f"CREATE TRIGGER stats_dirty_{table}_insert AFTER INSERT ON {table} BEGIN "
            f"{body(f'NEW.ticket_id, NEW.{at}')} END",
            f"CREATE TRIGGER stats_dirty_{table}_update AFTER UPDATE OF {columns} ON {table} BEGIN "
            f"{body(f'OLD.ticket_id, OLD.{at}', f'NEW.ticket_id, NEW.{at}')} END",
            f"CREATE TRIGGER stats_dirty_{table}_delete AFTER DELETE ON {table} BEGIN "
            f"{body(f'OLD.ticket_id, OLD.{at}')} END",
        ]
    out.append("CREATE TRIGGER stats_dirty_tickets_update AFTER UPDATE OF assigned_team ON tickets "
               f"BEGIN {body('NEW.ticket_id, NULL')} END")
    return out


def _trigger_names(dialect: str) -> list[tuple[str, str]]:
    if dialect == 'postgresql':
        return [(f"stats_dirty_{t}", t) for t, _, _ in WATCHED] + [("stats_dirty_tickets", "tickets")]
    return ([(f"stats_dirty_{t}_{op_}", t) for t, _, _ in WATCHED for op_ in ("insert", "update", "delete")]
            + [("stats_dirty_tickets_update", "tickets")])


def upgrade() -> None:
    op.create_table(
        'stats_rollup',
        sa.Column('bucket_seconds', sa.Integer(), nullable=False),
        sa.Column('bucket_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('family', sa.String(length=20), nullable=False),
        sa.Column('key_a', sa.String(length=100), nullable=False),
        sa.Column('key_b', sa.String(length=100), nullable=False),
        sa.Column('key_c', sa.String(length=20), nullable=False),
        *[sa.Column(f'n{i}', sa.BigInteger(), nullable=False) for i in range(9)],
        sa.Column('x0', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('bucket_seconds', 'bucket_start', 'family', 'key_a', 'key_b', 'key_c',
                                name=op.f('pk_stats_rollup')),
    )
    op.create_table(
        'stats_rollup_days',
        sa.Column('day', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rolled_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rolled_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('minutes', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_stats_rollup_days')),
    )
    op.create_table(
        'stats_dirty',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stats_dirty')),
    )
    dialect = op.get_bind().dialect.name
    for statement in (_pg_triggers() if dialect == 'postgresql' else _sqlite_triggers()):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, table in _trigger_names(dialect):
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if dialect == 'postgresql' else ""))
    if dialect == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS stats_mark_dirty()")
    op.drop_table('stats_dirty')
    op.drop_table('stats_rollup_days')
    op.drop_table('stats_rollup')
