"""What the requester added to a ticket after it was opened: their replies in the thread
of the bot's question (the clarification loop, bot.domain.conversation), and the detail
they added from App Home (bot.domain.requester). One conversation record.

The ticket's own `description` stays the first message as typed; what was added follows
here, oldest first, and the agent decides on all of it. A message waits for a decision
until the action that took it into account is named in `decided_action_id`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values


class MessageKind(enum.StrEnum):
    """How the requester added it."""

    # A reply in the thread of the bot's question (a Slack message).
    REPLY = "reply"
    # Detail added from App Home (a modal: no Slack message of its own).
    DETAIL = "detail"


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    __table_args__ = (
        # A Slack message is added once, whichever delivery of it arrives first (a
        # retried event, or the same reply as both an app_mention and a message event).
        # Detail from App Home has no Slack message: NULLs never collide.
        Index("uq_ticket_messages_slack_channel_id_slack_ts", "slack_channel_id", "slack_ts",
              unique=True),
        Index("ix_ticket_messages_ticket_id", "ticket_id"),
        known_values("kind", MessageKind),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # No ON DELETE: tickets are never deleted (erasure is redaction), see Ticket.
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.ticket_id"))
    kind: Mapped[str] = mapped_column(String(16), default=MessageKind.REPLY,
                                      server_default=MessageKind.REPLY.value)
    # Who wrote it (a Slack user id): the requester.
    author_id: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    # Where a reply was written, and Slack's id for the delivery that brought it
    # (None for detail from App Home).
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(50))
    event_id: Mapped[str | None] = mapped_column(String(100))
    # The action decided with this message taken into account; None while it waits.
    # (Actions are never deleted: they are in the audit chain.)
    decided_action_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("action_history.id"))
