"""Every action taken on a ticket, autonomous or not, with what it takes to undo it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

ACTION_TYPES = ("AUTO_RESOLVE", "ESCALATE", "ASSIGN_TO_TEAM", "REQUEST_CLARIFICATION")
# Rows that record a change made by a person rather than the agent.
RECORD_TYPES = ("ROLLBACK", "REOPEN", "CONFIRM")


class ActionHistory(Base):
    __tablename__ = "action_history"
    __table_args__ = (
        CheckConstraint(
            "confidence_score IS NULL OR (confidence_score >= 0 AND confidence_score <= 1)",
            name="confidence_0_1",
        ),
        Index("ix_action_history_ticket_id_action_type", "ticket_id", "action_type"),
        # Covering: per-type and per-team stats and the low-confidence alert read
        # their columns from the index alone (index-only scans on PostgreSQL).
        Index(
            "ix_action_history_executed_at",
            "executed_at",
            postgresql_include=["action_type", "autonomous", "confidence_score", "rolled_back",
                                "ticket_id"],
        ),
        Index("ix_action_history_rolled_back", "rolled_back"),
        # Alert and analytics windows: "autonomous actions in the last hour",
        # "rollbacks in the last hour".
        Index("ix_action_history_autonomous_executed_at", "autonomous", "executed_at"),
        Index("ix_action_history_rolled_back_at", "rolled_back_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.ticket_id", ondelete="CASCADE")
    )
    action_type: Mapped[str] = mapped_column(String(50))
    action_params: Mapped[dict] = mapped_column(default=dict)
    executed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    executed_by: Mapped[str] = mapped_column(String(50), default="autonomous_agent")
    # True when the bot acted on its own (what the caps count); False for triage
    # routing, people's answers and rollbacks.
    autonomous: Mapped[bool] = mapped_column(default=False)

    confidence_score: Mapped[float | None] = mapped_column()
    agent_reasoning: Mapped[str] = mapped_column(Text, default="")

    rollback_possible: Mapped[bool] = mapped_column(default=False)
    rollback_steps: Mapped[dict | None] = mapped_column()
    rolled_back: Mapped[bool] = mapped_column(default=False)
    rolled_back_at: Mapped[datetime | None] = mapped_column()
    # The Slack user id of the admin.
    rolled_back_by: Mapped[str | None] = mapped_column(String(32))
    rollback_reason: Mapped[str] = mapped_column(Text, default="")
    # For a ROLLBACK row: the action it undid.
    rollback_of: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("action_history.id", ondelete="SET NULL")
    )

    before_state: Mapped[dict | None] = mapped_column()
    after_state: Mapped[dict | None] = mapped_column()
