"""Held posts and alerts through the outbox: the CHECKs learn the new values.

slack_outbox.status may be `held` (Slack refused the bot's token or grants: the row is
still owed, with its due time, until the token works again); slack_outbox.purpose may
be `alert` (alert notices are outbox rows written with the rule's state); alert_state.rule
may be `limiter_unavailable` or `slack_posts_held`. The values are written out here,
not imported, as in 0004 and 0005.

The downgrade puts held rows back to pending (the old code retries, then fails them),
files alert rows as notices, and forgets the state of the two new rules.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-29 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = {
    ('slack_outbox', 'status'): ('pending', 'sent', 'failed', 'cancelled'),
    ('slack_outbox', 'purpose'): ('ticket_outcome', 'notice', 'followup'),
    ('alert_state', 'rule'): ('failure_rate', 'low_confidence', 'agent_errors', 'rollbacks',
                              'autonomy_cap'),
}
NEW = {
    ('slack_outbox', 'status'): (*OLD[('slack_outbox', 'status')], 'held'),
    ('slack_outbox', 'purpose'): (*OLD[('slack_outbox', 'purpose')], 'alert'),
    ('alert_state', 'rule'): (*OLD[('alert_state', 'rule')], 'limiter_unavailable',
                              'slack_posts_held'),
}


def _in(column: str, values: Sequence[str]) -> str:
    allowed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({allowed})"


def _replace_checks(checks: dict[tuple[str, str], Sequence[str]]) -> None:
    for table in sorted({table for table, _ in checks}):
        # SQLite cannot alter a constraint: batch mode rebuilds the table (env.py turns
        # foreign keys off around that, so the rebuild cascades nothing).
        with op.batch_alter_table(table, schema=None) as batch_op:
            for (owner, column), values in checks.items():
                if owner != table:
                    continue
                name = op.f(f'ck_{table}_{column}_known')
                batch_op.drop_constraint(name, type_='check')
                batch_op.create_check_constraint(name, _in(column, values))


def upgrade() -> None:
    _replace_checks(NEW)


def downgrade() -> None:
    op.execute(sa.text("UPDATE slack_outbox SET status = 'pending' WHERE status = 'held'"))
    op.execute(sa.text("UPDATE slack_outbox SET purpose = 'notice' WHERE purpose = 'alert'"))
    op.execute(sa.text(
        "DELETE FROM alert_state WHERE rule IN ('limiter_unavailable', 'slack_posts_held')"))
    _replace_checks(OLD)
