"""Carrying out an action on a ticket, with the record that explains and undoes it.

One call of `execute` changes the ticket, writes the action_history row (before and
after snapshots, confidence, reasoning) and, for AUTO_RESOLVE, the ticket_resolution
row and the follow-up DM it owes (an outbox row due after the delay). It only
flushes: the caller owns the transaction, so either all of it lands or none of it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import followups, snapshots
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    ActionType,
    Actor,
    Awaiting,
    EscalationPriority,
    Ticket,
    TicketResolution,
    TicketStatus,
)


@dataclass(frozen=True)
class PlannedAction:
    """What the policy decided to do with a ticket, before it is done."""

    action_type: ActionType
    confidence: float | None
    reasoning: str
    params: dict[str, Any] = field(default_factory=dict)
    # True when the bot acts on its own; only these count against the caps.
    autonomous: bool = True
    executed_by: str = Actor.AGENT

    def __post_init__(self) -> None:
        if self.action_type not in AGENT_ACTIONS:
            shown = str(self.action_type) if isinstance(self.action_type, str) else self.action_type
            raise ValueError(f"unknown action type {shown!r}")
        # A plain string naming an action becomes its member, as the type says.
        object.__setattr__(self, "action_type", ActionType(self.action_type))
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_type": self.action_type,
            "confidence": self.confidence,
            "reasoning": self.reasoning,
            "params": self.params,
        }


def _auto_resolve(ticket: Ticket, params: dict[str, Any], now: datetime) -> None:
    ticket.status = TicketStatus.RESOLVED
    ticket.resolved_at = now
    ticket.awaiting_response_from = Awaiting.NOBODY
    # The team that owns the topic owns the outcome: a "No" reopens the ticket to it,
    # and analytics count the resolution for it.
    if params.get("team"):
        ticket.assigned_team = params["team"]


def _escalate(ticket: Ticket, params: dict[str, Any], now: datetime) -> None:
    ticket.status = TicketStatus.ESCALATED
    ticket.escalated_at = now
    ticket.escalation_priority = params.get("priority", EscalationPriority.MEDIUM)
    ticket.assigned_team = params["team"]
    ticket.awaiting_response_from = Awaiting.SUPPORT


def _assign(ticket: Ticket, params: dict[str, Any], now: datetime) -> None:
    ticket.status = TicketStatus.IN_PROGRESS
    ticket.assigned_team = params["team"]
    ticket.awaiting_response_from = Awaiting.SUPPORT


def _clarify(ticket: Ticket, params: dict[str, Any], now: datetime) -> None:
    ticket.status = TicketStatus.AWAITING_USER
    ticket.awaiting_response_from = Awaiting.USER


_APPLY: dict[str, Callable[[Ticket, dict[str, Any], datetime], None]] = {
    ActionType.AUTO_RESOLVE: _auto_resolve,
    ActionType.ESCALATE: _escalate,
    ActionType.ASSIGN_TO_TEAM: _assign,
    ActionType.REQUEST_CLARIFICATION: _clarify,
}
_NEEDS_TEAM = frozenset({ActionType.ESCALATE, ActionType.ASSIGN_TO_TEAM})


def check(plan: PlannedAction) -> None:
    """Refuse a plan `execute` could not carry out.

    Raises:
        ValueError: an ESCALATE or ASSIGN_TO_TEAM without a team.
    """
    if plan.action_type in _NEEDS_TEAM and not plan.params.get("team"):
        raise ValueError(f"{plan.action_type} needs a team")


def execute(
    session: Session,
    ticket: Ticket,
    plan: PlannedAction,
    *,
    now: datetime,
    followup_delay: timedelta,
    arm: tuple[int, float] | None = None,
) -> ActionHistory:
    """Apply `plan` to `ticket` and record it.

    Args:
        session: the caller's session; flushed, not committed.
        ticket: the ticket, ideally loaded FOR UPDATE by the caller.
        plan: the action to carry out.
        now: the clock reading for every timestamp written.
        followup_delay: for AUTO_RESOLVE, when the follow-up DM becomes due.
        arm: the THRESHOLD_EXPERIMENT (experiment id, threshold) the decision used.

    Returns:
        The new action_history row.

    Raises:
        ValueError: an ESCALATE or ASSIGN_TO_TEAM without a team.
    """
    check(plan)
    before = snapshots.snapshot(ticket)
    _APPLY[plan.action_type](ticket, plan.params, now)
    ticket.updated_at = now
    row = ActionHistory(
        ticket_id=ticket.ticket_id,
        action_type=plan.action_type,
        action_params=plan.params,
        executed_at=now,
        executed_by=plan.executed_by,
        autonomous=plan.autonomous,
        confidence_score=plan.confidence,
        agent_reasoning=plan.reasoning,
        rollback_possible=True,
        before_state=before,
        after_state=snapshots.snapshot(ticket),
        experiment_id=arm[0] if arm is not None else None,
        threshold_arm=arm[1] if arm is not None else None,
    )
    session.add(row)
    session.flush()
    if plan.action_type == ActionType.AUTO_RESOLVE:
        _open_resolution(session, ticket, row, now=now, followup_delay=followup_delay)
    return row


def _open_resolution(
    session: Session,
    ticket: Ticket,
    action: ActionHistory,
    *,
    now: datetime,
    followup_delay: timedelta,
) -> TicketResolution:
    # One resolution per ticket (ticket_id is unique): a ticket resolved again after a
    # rollback starts its outcome afresh on the same row.
    resolution = session.scalars(
        select(TicketResolution).where(TicketResolution.ticket_id == ticket.ticket_id)
    ).one_or_none()
    if resolution is None:
        resolution = TicketResolution(ticket_id=ticket.ticket_id, created_at=now)
        session.add(resolution)
    resolution.action_id = action.id
    resolution.autonomous_action = action.action_type
    resolution.resolution_confirmed = None
    resolution.satisfaction_score = None
    resolution.user_feedback_text = ""
    resolution.followup_due_at = now + followup_delay
    resolution.followup_sent_at = None
    resolution.response_received_at = None
    resolution.reopened = False
    resolution.reopened_at = None
    resolution.reopened_reason = ""
    resolution.created_at = now
    resolution.updated_at = now
    session.flush()
    followups.schedule(session, resolution, ticket, due=resolution.followup_due_at, now=now)
    return resolution
