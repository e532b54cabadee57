"""Slack posts owed to people, written in the same transaction as what they announce.

A post is delivered right after the commit; if Slack is down or the process dies, the
row stays pending and the retry job delivers it later, with backoff.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

OUTBOX_STATUSES = ("pending", "sent", "failed")


class SlackOutbox(Base):
    __tablename__ = "slack_outbox"
    __table_args__ = (Index("ix_slack_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.ticket_id", ondelete="CASCADE")
    )
    # What the post is for: "ticket_outcome" (the bot's answer, remembered on the
    # ticket so it can be updated), "notice" (escalation/alert channel messages).
    purpose: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[list | None] = mapped_column()
    # When the channel refuses the bot (not_in_channel), DM this user instead.
    fallback_user: Mapped[str | None] = mapped_column(String(32))

    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    claimed_until: Mapped[datetime | None] = mapped_column()
    claim_token: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None] = mapped_column()
    sent_channel: Mapped[str | None] = mapped_column(String(64))
    message_ts: Mapped[str | None] = mapped_column(String(50))
    last_error: Mapped[str] = mapped_column(Text, default="")
