"""A request for help, from Slack (or the CLI)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values

# Column lengths that text from outside (an agent's answer) is cut to.
CATEGORY_LENGTH = 30
TEAM_LENGTH = 100
DECISION_ERROR_LENGTH = 500


class TicketStatus(enum.StrEnum):
    """Where a ticket stands (`tickets.status`; the stored values are these strings)."""

    NEW = "new"  # stored at intake, not yet decided on
    OPEN = "open"  # with a human team, no action pending (also: reopened by the requester)
    IN_PROGRESS = "in_progress"  # assigned to a team
    AWAITING_USER = "awaiting_user"  # the bot asked the requester for more detail
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"  # withdrawn by the requester (App Home): nobody works on it


class Awaiting(enum.StrEnum):
    """Whose move it is (`tickets.awaiting_response_from`)."""

    NOBODY = ""  # resolved, or not decided on yet
    SUPPORT = "support"  # a human team
    USER = "user"  # the requester, asked for more detail


class EscalationPriority(enum.StrEnum):
    """How urgent an escalation is (`tickets.escalation_priority`)."""

    CRITICAL = "critical"  # a security incident, an outage, data loss
    HIGH = "high"  # the agent asked for escalation with high confidence
    MEDIUM = "medium"


class TicketSource(enum.StrEnum):
    """Where a ticket came from (`tickets.source`)."""

    SLASH_COMMAND = "slash_command"
    DM = "dm"
    MENTION = "mention"
    CLI = "cli"
    # Opened from someone's message for its author: a :ticket: reaction, or the
    # message shortcut "Create a ticket".
    REACTION = "reaction"
    SHORTCUT = "shortcut"


class Ticket(Base):
    """A request for help. Never deleted by the app: its history, outcomes and posts
    refer to it without ON DELETE, so the database refuses a delete; erasing what a
    person wrote is redaction (bot.domain.retention)."""

    __tablename__ = "tickets"
    __table_args__ = (
        known_values("status", TicketStatus),
        Index("ix_tickets_status_created_at", "status", "created_at"),
        Index("ix_tickets_assigned_team", "assigned_team"),
        # Per-team stats need one column of a ticket: probing this index (with the team
        # included) is far cheaper than reading the wide ticket rows.
        Index("ix_tickets_ticket_id", "ticket_id", postgresql_include=["assigned_team"]),
        # One ticket per Slack message, however many people react to it at once.
        UniqueConstraint("origin_channel_id", "origin_message_ts"),
        # A reply in a thread finds the ticket the bot asked about there (every threaded
        # message in the bot's channels is looked up, so it must be cheap).
        Index("ix_tickets_slack_channel_id_slack_thread_ts", "slack_channel_id", "slack_thread_ts"),
    )

    ticket_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # The requester: a Slack user id.
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str | None] = mapped_column(String(255))
    department: Mapped[str | None] = mapped_column(String(255))
    issue_type: Mapped[str] = mapped_column(String(100))
    # Plain strings in the database (reporting tools read them); a value read back
    # compares equal to its TicketStatus member.
    status: Mapped[str] = mapped_column(String(50), default=TicketStatus.NEW)
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(CATEGORY_LENGTH), default="other")
    tags: Mapped[list] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    agent_response: Mapped[dict | None] = mapped_column()
    agent_processed: Mapped[bool] = mapped_column(default=False)
    # Decision kept when autonomy was not allowed (cap, limiter down, agent down).
    suggested_action: Mapped[dict | None] = mapped_column()
    # The decision's claim (bot.domain.processing): taken in a short transaction before
    # the agent is asked, cleared when the bot acts; a claim past `claimed_until` was
    # left by a worker that died, and another may take the ticket over.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column()
    # Claims taken since the ticket was last decided on, and why the last attempt
    # failed; after 3 failed attempts the ticket goes to people with that reason.
    decision_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    decision_error: Mapped[str] = mapped_column(String(DECISION_ERROR_LENGTH), default="",
                                                server_default="")

    assigned_team: Mapped[str | None] = mapped_column(String(TEAM_LENGTH))
    # The person on the team who has the ticket (a Slack user id): who clicked
    # "Take it" or resolved it. None while it waits in the team's queue.
    assigned_to: Mapped[str | None] = mapped_column(String(32))
    awaiting_response_from: Mapped[str] = mapped_column(String(20), default=Awaiting.NOBODY)
    escalated_at: Mapped[datetime | None] = mapped_column()
    escalation_priority: Mapped[str | None] = mapped_column(String(10))
    resolved_at: Mapped[datetime | None] = mapped_column()

    # Where the ticket lives in Slack.
    source: Mapped[str] = mapped_column(String(20), default=TicketSource.SLASH_COMMAND)
    source_event_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    slack_team_id: Mapped[str | None] = mapped_column(String(32))
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_thread_ts: Mapped[str] = mapped_column(String(50), default="")
    slack_message_ts: Mapped[str | None] = mapped_column(String(50))
    # The message a ticket was opened from (a reaction or the message shortcut): its
    # channel and ts. Empty for tickets asked for directly.
    origin_channel_id: Mapped[str | None] = mapped_column(String(32))
    origin_message_ts: Mapped[str | None] = mapped_column(String(50))
