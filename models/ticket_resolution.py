"""The outcome of an auto-resolution, as the requester reports it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# A follow-up is still owed: not sent, not answered (feedback sets response_received_at
# together with the confirmation and the rating).
_FOLLOWUP_OPEN = "followup_sent_at IS NULL AND response_received_at IS NULL"


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
        # The follow-up sweep asks "which unanswered resolutions are due?". Sent and
        # answered rows keep their due time, so only the open ones are indexed: the
        # claim then reads the due rows, not the whole history (bench/queries.py).
        Index(
            "ix_ticket_resolution_followup_due_at",
            "followup_due_at",
            postgresql_where=text(_FOLLOWUP_OPEN),
            sqlite_where=text(_FOLLOWUP_OPEN),
        ),
        # The failure-rate alert windows on when people answered.
        Index("ix_ticket_resolution_response_received_at", "response_received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.ticket_id", ondelete="CASCADE"), unique=True
    )
    # The AUTO_RESOLVE action this outcome belongs to.
    action_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("action_history.id", ondelete="SET NULL")
    )
    autonomous_action: Mapped[str] = mapped_column(String(50))

    resolution_confirmed: Mapped[bool | None] = mapped_column()
    user_feedback_text: Mapped[str] = mapped_column(Text, default="")
    satisfaction_score: Mapped[int | None] = mapped_column()

    # When a follow-up DM is due; cleared when it is no longer wanted (rollback).
    followup_due_at: Mapped[datetime | None] = mapped_column()
    followup_sent_at: Mapped[datetime | None] = mapped_column()
    # A worker's claim on sending the follow-up: it expires, so a worker killed
    # mid-send loses nothing (another takes over and reconciles first).
    followup_claimed_until: Mapped[datetime | None] = mapped_column()
    followup_claim_token: Mapped[str | None] = mapped_column(String(32))
    followup_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    followup_channel: Mapped[str | None] = mapped_column(String(32))
    followup_message_ts: Mapped[str | None] = mapped_column(String(50))
    followup_last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    response_received_at: Mapped[datetime | None] = mapped_column()

    reopened: Mapped[bool] = mapped_column(default=False)
    reopened_at: Mapped[datetime | None] = mapped_column()
    reopened_reason: Mapped[str] = mapped_column(Text, default="")

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
