"""CHECK constraints from the enums: action_history.action_type and alert_state.rule.

tickets.status already has its CHECK (0001), with the values of models.TicketStatus.
The values are written out here, not imported: a migration states the schema as it
was at this revision, whatever the enums become later (a new member needs a migration
that replaces the constraint; tests/integration/test_migrations.py notices).

Rows holding a value the constraint would refuse stop the upgrade before any change,
with a message that names them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTION_TYPES = ('AUTO_RESOLVE', 'ESCALATE', 'ASSIGN_TO_TEAM', 'REQUEST_CLARIFICATION',
                'ROLLBACK', 'REOPEN', 'CONFIRM')
ALERT_RULES = ('failure_rate', 'low_confidence', 'agent_errors', 'rollbacks', 'autonomy_cap')
CHECKS = (
    ('action_history', 'action_type', ACTION_TYPES),
    ('alert_state', 'rule', ALERT_RULES),
)


def _in(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({allowed})"


def _refuse_unknown(table: str, column: str, values: Sequence[str]) -> None:
    found = op.get_bind().execute(sa.text(
        f"SELECT {column}, count(*) FROM {table} WHERE NOT ({_in(column, values)}) "
        f"GROUP BY {column} ORDER BY {column}"
    )).all()
    if found:
        listed = ", ".join(f"{value!r} ({count} rows)" for value, count in found)
        raise RuntimeError(
            f"{table}.{column} holds values the new CHECK would refuse: {listed}. "
            f"Known values: {', '.join(values)}. Correct or delete those rows, then "
            "upgrade again; nothing was changed."
        )


def upgrade() -> None:
    for table, column, values in CHECKS:
        _refuse_unknown(table, column, values)
    for table, column, values in CHECKS:
        # SQLite cannot add a constraint to a table: batch mode rebuilds it (env.py
        # turns foreign keys off around that, so the rebuild cascades nothing).
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint(op.f(f'ck_{table}_{column}_known'),
                                             _in(column, values))


def downgrade() -> None:
    for table, column, _ in reversed(CHECKS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f'ck_{table}_{column}_known'), type_='check')
