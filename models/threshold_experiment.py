"""A/B experiments on AUTONOMY_THRESHOLD (THRESHOLD_EXPERIMENT, bot.domain.experiments).

One row per experiment: its arms (the thresholds compared, in the order set), when it
started, and when, by whom and why it stopped. At most one runs at a time: `running`
is True while it runs and NULL once stopped, under a UNIQUE constraint (NULLs never
collide, on PostgreSQL and SQLite alike), so two processes starting one at the same
moment cannot both succeed. Each of the bot's decisions taken while it ran names it
and its arm in `action_history.experiment_id` / `threshold_arm`; the results are read
from there, so they stay readable after the stop.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values


class ExperimentStop(enum.StrEnum):
    """`threshold_experiments.stop_cause`: what ended an experiment."""

    ADMIN = "admin"  # /autonomy experiment stop
    UNSET = "unset"  # a process found THRESHOLD_EXPERIMENT unset
    CHANGED = "changed"  # a process found THRESHOLD_EXPERIMENT set to other arms


class ThresholdExperiment(Base):
    __tablename__ = "threshold_experiments"
    __table_args__ = (
        known_values("stop_cause", ExperimentStop),
        CheckConstraint("running IS NULL OR running", name="running_or_null"),
        CheckConstraint("(running IS NULL) = (stopped_at IS NOT NULL)", name="stopped_when_not_running"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # The thresholds compared, as set: "0.75,0.85" (each `repr(float)`); the first is
    # what the others are compared with.
    arms: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column()
    # True while running, NULL once stopped (unique: one running experiment at most).
    running: Mapped[bool | None] = mapped_column(unique=True)
    stopped_at: Mapped[datetime | None] = mapped_column()
    # A Slack user id for an admin's stop; NULL when a process stopped it.
    stopped_by: Mapped[str | None] = mapped_column(String(32))
    stop_cause: Mapped[str | None] = mapped_column(String(10))  # an ExperimentStop
    stop_reason: Mapped[str] = mapped_column(Text, default="")
