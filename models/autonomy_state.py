"""The autonomy switch, and what the bot would have done while it was in shadow mode.

`autonomy_state` holds one row (id 1): whether the bot may act alone (`on`), may not
(`paused`: every ticket goes to human triage with the bot's suggestion kept), or
decides and records what it would have done but acts as triage (`shadow`). No row
means `on`, the state of a new install. Every process that decides reads it in the
decision's own transactions, so a change holds everywhere at the next decision.

`shadow_decisions` holds one row per ticket the bot would have acted on alone in
shadow mode: what it would have done, beside the triage action it took instead, so
/resolution-stats can compare it with what people then did.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.action_history import ActionType
from models.base import Base, known_values

# The one row's id.
STATE_ID = 1


class AutonomyMode(enum.StrEnum):
    """`autonomy_state.mode`: whether the bot may act alone."""

    ON = "on"
    PAUSED = "paused"
    SHADOW = "shadow"


class AutonomyState(Base):
    __tablename__ = "autonomy_state"
    __table_args__ = (
        known_values("mode", AutonomyMode),
        CheckConstraint(f"id = {STATE_ID}", name="single_row"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, default=STATE_ID)
    mode: Mapped[str] = mapped_column(String(10), default=AutonomyMode.ON)  # an AutonomyMode
    # Why it was last changed (the admin's words), by whom (a Slack user id) and when.
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str | None] = mapped_column(String(32))
    changed_at: Mapped[datetime | None] = mapped_column()


class ShadowDecision(Base):
    __tablename__ = "shadow_decisions"
    __table_args__ = (
        known_values("action_type", ActionType),
        CheckConstraint(
            "confidence_score IS NULL OR (confidence_score >= 0 AND confidence_score <= 1)",
            name="confidence_0_1",
        ),
        # The stats window.
        Index("ix_shadow_decisions_decided_at", "decided_at"),
        Index("ix_shadow_decisions_ticket_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.ticket_id"))
    # The triage action the bot took instead (one shadow decision per action).
    action_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("action_history.id"), unique=True)
    # What the bot would have done alone: the action, the team it named, its confidence.
    action_type: Mapped[str] = mapped_column(String(50))
    team: Mapped[str | None] = mapped_column(String(100))
    confidence_score: Mapped[float | None] = mapped_column()
    decided_at: Mapped[datetime] = mapped_column()
