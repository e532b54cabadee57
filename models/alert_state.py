"""Where each alert rule stands, so a restart neither re-fires nor forgets a resolve."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values


class AlertRule(enum.StrEnum):
    """The alert rules, in the order they are evaluated and posted (`alert_state.rule`)."""

    FAILURE_RATE = "failure_rate"
    LOW_CONFIDENCE = "low_confidence"
    AGENT_ERRORS = "agent_errors"
    ROLLBACKS = "rollbacks"
    AUTONOMY_CAP = "autonomy_cap"
    LIMITER_DOWN = "limiter_unavailable"
    POSTS_HELD = "slack_posts_held"
    # The scheduled backup (BACKUP_DIR) failed to be made or to verify, or none is recent.
    BACKUP_FAILED = "backup_failed"


class AlertState(Base):
    __tablename__ = "alert_state"
    __table_args__ = (known_values("rule", AlertRule),)

    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    firing: Mapped[bool] = mapped_column(default=False)
    first_fired_at: Mapped[datetime | None] = mapped_column()
    last_sent_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    last_value: Mapped[float | None] = mapped_column()
    last_message: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime | None] = mapped_column()
