"""Slack messages owed to people, written in the same transaction as what they announce.

One table for every message the bot owes: a post is due at once and delivered right
after the commit; a follow-up DM is due a day later. If Slack is down or the process
dies, the row stays pending and the delivery job sends it later, with backoff; if Slack
refuses the bot's token, the row is held until the token works again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values


class OutboxStatus(StrEnum):
    """Where a row is in its life. Only `pending` rows are ever sent."""

    PENDING = "pending"  # owed from next_attempt_at on
    SENT = "sent"
    FAILED = "failed"  # Slack refused it, or it ran out of attempts
    CANCELLED = "cancelled"  # no longer wanted (see cancel_reason); never an error
    # Slack refused the bot's token or grants (last_error says how): still owed, kept
    # with its due time until the token works again, then pending once more.
    HELD = "held"


class OutboxPurpose(StrEnum):
    """What a row is for, which decides how it is drawn, sent and recorded."""

    # The bot's answer on a ticket, remembered on the ticket so it can be updated.
    TICKET_OUTCOME = "ticket_outcome"
    # Escalation, reopen and rollback channel messages.
    NOTICE = "notice"
    # An alert rule firing, still firing or resolved, written with the rule's state.
    ALERT = "alert"
    # The one DM asking whether an auto-resolution worked, drawn when it is sent.
    FOLLOWUP = "followup"
    # The audit chain's head, posted daily to AUDIT_CHANNEL: an anchor outside the database.
    AUDIT_ANCHOR = "audit_anchor"


class SlackOutbox(Base):
    __tablename__ = "slack_outbox"
    __table_args__ = (
        Index("ix_slack_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # Answering and rollback cancel a resolution's follow-up by this column; only
        # follow-ups have it, so only they are indexed.
        Index(
            "ix_slack_outbox_resolution_id",
            "resolution_id",
            postgresql_where=text("resolution_id IS NOT NULL"),
            sqlite_where=text("resolution_id IS NOT NULL"),
        ),
        # A ticket's team notices are found again to redraw them (take, resolve, reopen).
        Index("ix_slack_outbox_ticket_id", "ticket_id"),
        Index(
            "ix_slack_outbox_person_resolution_id",
            "person_resolution_id",
            postgresql_where=text("person_resolution_id IS NOT NULL"),
            sqlite_where=text("person_resolution_id IS NOT NULL"),
        ),
        # A follow-up DM's rows (the one that posted it and those folded into it), read
        # to redraw it on a click, and a person's latest DM (SURVEY_COOLDOWN).
        Index(
            "ix_slack_outbox_message_ts",
            "message_ts",
            postgresql_where=text("message_ts IS NOT NULL"),
            sqlite_where=text("message_ts IS NOT NULL"),
        ),
        Index(
            "ix_slack_outbox_followup_recipient",
            "recipient", "sent_at",
            postgresql_where=text("purpose = 'followup' AND folded_into IS NULL"),
            sqlite_where=text("purpose = 'followup' AND folded_into IS NULL"),
        ),
        known_values("status", OutboxStatus),
        known_values("purpose", OutboxPurpose),
        CheckConstraint("channel IS NOT NULL OR recipient IS NOT NULL", name="destination"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # No ON DELETE: tickets are never deleted (erasure is redaction), see Ticket.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.ticket_id"))
    # The auto-resolution a follow-up asks about (follow-ups only).
    resolution_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_resolution.id", ondelete="CASCADE")
    )
    # Or the person's resolution it asks about (follow-ups only; never both).
    person_resolution_id: Mapped[int | None] = mapped_column(
        ForeignKey("person_resolution.id", ondelete="CASCADE")
    )
    purpose: Mapped[str] = mapped_column(String(40))  # an OutboxPurpose
    # Where to post; empty for a DM, whose conversation is opened when it is sent.
    channel: Mapped[str | None] = mapped_column(String(64))
    # A DM to this person (follow-ups).
    recipient: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(50))
    # Empty for a follow-up: it is drawn from the resolution's state when it is sent.
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[list | None] = mapped_column()
    # When the channel refuses the bot (not_in_channel), DM this user instead.
    fallback_user: Mapped[str | None] = mapped_column(String(32))

    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING)  # an OutboxStatus
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    claimed_until: Mapped[datetime | None] = mapped_column()
    claim_token: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None] = mapped_column()
    sent_channel: Mapped[str | None] = mapped_column(String(64))
    message_ts: Mapped[str | None] = mapped_column(String(50))
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Why a row was cancelled ("answered", "rolled back"...).
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    # A follow-up folded into a DM the person already had (SURVEY_COOLDOWN): the outbox
    # row that posted that DM. Its sent_channel/message_ts are that DM's.
    folded_into: Mapped[int | None] = mapped_column(ForeignKey("slack_outbox.id"))
