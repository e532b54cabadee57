"""Every action taken on a ticket, autonomous or not, with what it takes to undo it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values

# What people type into /rollback and see next to every action: the first hex digits.
SHORT_ID_LENGTH = 8


class ActionType(enum.StrEnum):
    """Every `action_history.action_type`: the bot's actions and the records of people's."""

    # The bot's actions (AGENT_ACTIONS): each has a rollback.
    AUTO_RESOLVE = "AUTO_RESOLVE"
    ESCALATE = "ESCALATE"
    ASSIGN_TO_TEAM = "ASSIGN_TO_TEAM"
    REQUEST_CLARIFICATION = "REQUEST_CLARIFICATION"
    # Records of a change made by a person: an admin's rollback, the requester's "No"
    # (reopen) and a "Yes" after it (confirm). Never undone themselves.
    ROLLBACK = "ROLLBACK"
    REOPEN = "REOPEN"
    CONFIRM = "CONFIRM"
    # A helpdesk person's work from the team channel: taking a ticket, and resolving it
    # with a note. An admin may roll these back like the bot's actions.
    TAKE = "TAKE"
    RESOLVE = "RESOLVE"


# The four actions the agent's decision can become: what the caps count, analytics
# report per type and an admin may roll back. A tuple in the enum's order, so what
# iterates over it (SQL parameters, parametrized tests) is the same on every run.
AGENT_ACTIONS = (
    ActionType.AUTO_RESOLVE,
    ActionType.ESCALATE,
    ActionType.ASSIGN_TO_TEAM,
    ActionType.REQUEST_CLARIFICATION,
)
# What a person does from the team channel, recorded with before/after like the bot's
# actions (analytics count these apart: the bot's record stays the bot's).
PEOPLE_ACTIONS = (ActionType.TAKE, ActionType.RESOLVE)
# What an admin may roll back.
UNDOABLE_ACTIONS = AGENT_ACTIONS + PEOPLE_ACTIONS


class Actor(enum.StrEnum):
    """Who acted, when it was not a person: the other `executed_by` values are Slack
    user ids, so that column has no CHECK."""

    AGENT = "autonomous_agent"  # the bot, on the agent's decision
    SYSTEM = "system"  # the bot, routing to human triage without acting alone


def short_id(action_id: uuid.UUID | None) -> str:
    """The first 8 hex digits of an action id, what people type into /rollback.

    Args:
        action_id: the action's id; None for a row not flushed yet.

    Returns:
        The short id, or "????????" when there is no id to shorten.
    """
    if not isinstance(action_id, uuid.UUID):
        return "?" * SHORT_ID_LENGTH
    return action_id.hex[:SHORT_ID_LENGTH]


class ActionHistory(Base):
    __tablename__ = "action_history"
    __table_args__ = (
        CheckConstraint(
            "confidence_score IS NULL OR (confidence_score >= 0 AND confidence_score <= 1)",
            name="confidence_0_1",
        ),
        known_values("action_type", ActionType),
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
        # An experiment's results (bot.domain.experiment_stats): its decisions only
        # (partial: most actions are in none), in the order they are grouped, covering
        # on PostgreSQL (an index-only scan, not the whole table).
        Index("ix_action_history_experiment_id", "experiment_id", "threshold_arm", "ticket_id",
              postgresql_include=["id", "action_type", "autonomous", "rolled_back", "executed_at"],
              postgresql_where=text("experiment_id IS NOT NULL"),
              sqlite_where=text("experiment_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # No ON DELETE: a ticket's deletion must not erase its history. The app never
    # deletes tickets (erasure is redaction, bot.domain.retention), and the database
    # refuses a delete that would orphan these rows.
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.ticket_id"))
    action_type: Mapped[str] = mapped_column(String(50))
    action_params: Mapped[dict] = mapped_column(default=dict)
    executed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # An Actor or the Slack user id of the person who acted.
    executed_by: Mapped[str] = mapped_column(String(50), default=Actor.AGENT)
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

    # For a decision taken while a THRESHOLD_EXPERIMENT ran: the experiment, and the
    # ticket's arm (the AUTONOMY_THRESHOLD this decision used). NULL otherwise.
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("threshold_experiments.id"))
    threshold_arm: Mapped[float | None] = mapped_column()
