"""The NPS question a follow-up DM carried, and the answer, one row per DM that asked.

The row is written when the DM that asks goes out (score still empty), so "asked within
NPS_INTERVAL" is one indexed read per person; the person's click fills the score, and a
second click changes it (the DM is the key: one answer per ask, never a second row).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class NpsAnswer(Base):
    __tablename__ = "nps_answers"
    __table_args__ = (
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 10)", name="score_range"),
        # Was this person asked within the interval? (the latest ask per person)
        Index("ix_nps_answers_user_id_asked_at", "user_id", "asked_at"),
        # The stats window.
        Index("ix_nps_answers_answered_at", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # The follow-up DM that asked (its head outbox row): the answer's key.
    outbox_id: Mapped[int] = mapped_column(ForeignKey("slack_outbox.id"), unique=True)
    user_id: Mapped[str] = mapped_column(String(32))
    asked_at: Mapped[datetime] = mapped_column()
    score: Mapped[int | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
