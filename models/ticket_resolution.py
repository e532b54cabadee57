"""The outcome of an auto-resolution, as the requester reports it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class TicketResolution(Base):
    __tablename__ = "ticket_resolution"
    __table_args__ = (
        CheckConstraint(
            "satisfaction_score IS NULL OR (satisfaction_score >= 1 AND satisfaction_score <= 5)",
            name="satisfaction_1_5",
        ),
        Index(
            "ix_ticket_resolution_autonomous_action_resolution_confirmed",
            "autonomous_action",
            "resolution_confirmed",
        ),
        Index("ix_ticket_resolution_satisfaction_score", "satisfaction_score"),
        Index("ix_ticket_resolution_created_at", "created_at"),
        # The latest "What didn't work?" texts of /resolution-stats, newest first.
        Index("ix_ticket_resolution_feedback_updated_at", "updated_at", "id",
              postgresql_where=text("user_feedback_text <> ''"),
              sqlite_where=text("user_feedback_text <> ''")),
        # The failure-rate alert windows on when people answered.
        Index("ix_ticket_resolution_response_received_at", "response_received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.ticket_id"), unique=True
    )
    # The AUTO_RESOLVE action this outcome belongs to.
    action_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("action_history.id", ondelete="SET NULL")
    )
    autonomous_action: Mapped[str] = mapped_column(String(50))

    resolution_confirmed: Mapped[bool | None] = mapped_column()
    user_feedback_text: Mapped[str] = mapped_column(Text, default="")
    satisfaction_score: Mapped[int | None] = mapped_column()

    # When the follow-up DM is due (cleared by a rollback) and when it went out, for
    # reports. The DM itself is a slack_outbox row (purpose "followup"), written
    # with this one, which the delivery job claims, sends and records.
    followup_due_at: Mapped[datetime | None] = mapped_column()
    followup_sent_at: Mapped[datetime | None] = mapped_column()
    response_received_at: Mapped[datetime | None] = mapped_column()

    reopened: Mapped[bool] = mapped_column(default=False)
    reopened_at: Mapped[datetime | None] = mapped_column()
    reopened_reason: Mapped[str] = mapped_column(Text, default="")

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
