"""Deciding on a new ticket: ask the agent, apply the policy and the caps, act.

Runs off the Slack request path (a job or a background thread), inside one
transaction owned by the caller. The ticket row is locked for the whole decision, so
two workers handed the same ticket act once; a ticket no longer `new` is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agent.answer import Agent, AgentAnswer, AgentUnavailable, MalformedAnswer, TicketInput
from bot.core import clock
from bot.core.errors import NotFound
from bot.core.settings import Settings
from bot.domain import actions, audit, policy
from bot.domain.actions import PlannedAction
from bot.domain.ratelimit import AutonomyBudget
from models import ActionHistory, AgentCall, Ticket, TicketStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to a ticket."""

    ticket: Ticket
    action: ActionHistory | None
    answer: AgentAnswer | None
    plan: PlannedAction | None
    # Set when the bot did not act alone, with the reason people are shown.
    triage_reason: str | None = None
    # True when the ticket had been decided on before this call.
    already_processed: bool = False


def process_ticket(
    session: Session,
    ticket_id: int,
    *,
    agent: Agent,
    budget: AutonomyBudget,
    settings: Settings,
    now: datetime | None = None,
) -> Outcome:
    """Decide on and act on one `new` ticket.

    Args:
        session: the caller's session; flushed, not committed.
        ticket_id: the ticket to decide on.
        agent: who analyses it.
        budget: the autonomy caps.
        settings: thresholds, team names, follow-up delay.
        now: the clock reading for the action.

    Raises:
        NotFound: no such ticket.
    """
    ticket = session.scalars(
        select(Ticket)
        .where(Ticket.ticket_id == ticket_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if ticket is None:
        raise NotFound(f"Ticket #{ticket_id} does not exist.")
    last = _last_action(session, ticket_id)
    if ticket.status != TicketStatus.NEW or ticket.agent_processed or last is not None:
        return Outcome(ticket, last, None, None, already_processed=True)

    answer: AgentAnswer | None = None
    try:
        answer = agent.analyse(_input(ticket), record=_recorder(session, ticket_id))
    except AgentUnavailable as error:
        log.warning("agent unavailable for ticket %s: %s", ticket_id, error)
        if isinstance(error, MalformedAnswer):
            # It answered, but nothing the bot may act on (off the wire format or
            # schema, or the model refused): people decide.
            reason = f"the agent's answer could not be used ({error})"
        else:
            reason = f"the agent is unavailable ({error})"
        planned = policy.triage(reason, settings=settings)
        return _act(session, ticket, planned, None, settings, now, planned.params["reason"])

    ticket.agent_response = answer.to_dict()
    ticket.category = answer.category[:30]
    planned = policy.plan(answer, settings)
    if not planned.autonomous:
        return _act(session, ticket, planned, answer, settings, now, planned.params["reason"])

    cap = budget.try_acquire()
    if not cap.allowed:
        event = audit.AUTONOMY_LIMITER_DOWN if not cap.cap else audit.AUTONOMY_CAP_REACHED
        audit.record(
            session, event, actor_id=None, ticket_id=ticket_id,
            detail={"reason": cap.reason, "cap": cap.cap}, now=now,
        )
        triaged = policy.triage(cap.reason, settings=settings, answer=answer, suggestion=planned)
        ticket.suggested_action = planned.to_dict()
        return _act(session, ticket, triaged, answer, settings, now, cap.reason)
    return _act(session, ticket, planned, answer, settings, now, None)


def _act(
    session: Session,
    ticket: Ticket,
    planned: PlannedAction,
    answer: AgentAnswer | None,
    settings: Settings,
    now: datetime | None,
    triage_reason: str | None,
) -> Outcome:
    ticket.agent_processed = True
    row = actions.execute(
        session, ticket, planned, now=now or clock.now(), followup_delay=settings.followup_delay
    )
    return Outcome(ticket, row, answer, planned, triage_reason=triage_reason)


def _input(ticket: Ticket) -> TicketInput:
    return TicketInput(
        ticket_id=ticket.ticket_id,
        description=ticket.description,
        issue_type=ticket.issue_type,
        category=ticket.category,
        tags=tuple(ticket.tags or ()),
        user_id=ticket.user_id,
        user_name=ticket.user_name or "",
        department=ticket.department or "",
    )


def _recorder(session: Session, ticket_id: int):
    def record(*, agent: str, ok: bool, latency_ms: float, attempts: int, error: str) -> None:
        session.add(
            AgentCall(
                called_at=clock.now(), agent=agent, ticket_id=ticket_id, ok=ok,
                latency_ms=latency_ms, attempts=attempts, error=error[:2000],
            )
        )

    return record


def _last_action(session: Session, ticket_id: int) -> ActionHistory | None:
    return session.scalars(
        select(ActionHistory)
        .where(ActionHistory.ticket_id == ticket_id)
        .order_by(ActionHistory.executed_at.desc())
        .limit(1)
    ).first()
