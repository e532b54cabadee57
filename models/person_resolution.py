"""A helpdesk person's resolution of a ticket, and how the requester rated it.

The bot's auto-resolution keeps its outcome in `ticket_resolution`, one row per ticket
(the reference schema's contract, and what the bot's success rate and the failure
alert read). A person's resolution is measured the same way (the requester gets the
same Yes/No and stars, and a follow-up DM) but on a row of its own here, one per
RESOLVE action: a ticket the bot resolved, the requester said No to, and a person then
resolved keeps both verdicts, each counted for whoever gave the answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class PersonResolution(Base):
    __tablename__ = "person_resolution"
    __table_args__ = (
        CheckConstraint(
            "satisfaction_score IS NULL OR (satisfaction_score >= 1 AND satisfaction_score <= 5)",
            name="satisfaction_1_5",
        ),
        Index("ix_person_resolution_ticket_id", "ticket_id"),
        # The stats window, as for ticket_resolution.
        Index("ix_person_resolution_created_at", "created_at"),
        # The latest "What didn't work?" texts of /resolution-stats, newest first.
        Index("ix_person_resolution_feedback_updated_at", "updated_at", "id",
              postgresql_where=text("user_feedback_text <> ''"),
              sqlite_where=text("user_feedback_text <> ''")),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.ticket_id"))
    # The RESOLVE action this outcome belongs to (one outcome per action).
    action_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("action_history.id", ondelete="SET NULL"), unique=True
    )
    # Who resolved it (a Slack user id), for which team, and what they wrote.
    resolved_by: Mapped[str] = mapped_column(String(32))
    team: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")

    # The requester's verdict, as on ticket_resolution.
    resolution_confirmed: Mapped[bool | None] = mapped_column()
    user_feedback_text: Mapped[str] = mapped_column(Text, default="")
    satisfaction_score: Mapped[int | None] = mapped_column()

    # The follow-up DM: a slack_outbox row (purpose "followup") pointing here.
    followup_due_at: Mapped[datetime | None] = mapped_column()
    followup_sent_at: Mapped[datetime | None] = mapped_column()
    response_received_at: Mapped[datetime | None] = mapped_column()

    reopened: Mapped[bool] = mapped_column(default=False)
    reopened_at: Mapped[datetime | None] = mapped_column()
    reopened_reason: Mapped[str] = mapped_column(Text, default="")

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
