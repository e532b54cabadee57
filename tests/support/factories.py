"""Small keyword-only factories for test data, written through the real services."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.core import clock
from bot.domain import actions
from bot.domain.actions import PlannedAction
from models import ActionHistory, ActionType, EscalationPriority, Ticket, TicketStatus


def make_ticket(
    session: Session,
    *,
    user_id: str = "UREQ",
    description: str = "My VPN keeps disconnecting",
    status: TicketStatus = TicketStatus.NEW,
    assigned_team: str | None = None,
    created_at: datetime | None = None,
) -> Ticket:
    now = created_at or clock.now()
    ticket = Ticket(
        user_id=user_id,
        issue_type=description[:100],
        description=description,
        status=status,
        assigned_team=assigned_team,
        tags=[],
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    return ticket


def make_plan(
    action_type: ActionType = ActionType.AUTO_RESOLVE,
    *,
    confidence: float | None = 0.9,
    team: str = "Network",
    reasoning: str = "Matched KB article 'vpn'",
    autonomous: bool = True,
) -> PlannedAction:
    params: dict = {"steps": ["Reconnect"], "team": team}
    if action_type == ActionType.ESCALATE:
        params["priority"] = EscalationPriority.HIGH
    if action_type == ActionType.REQUEST_CLARIFICATION:
        params["questions"] = ["Which network are you on?"]
    return PlannedAction(
        action_type=action_type,
        confidence=confidence,
        reasoning=reasoning,
        params=params,
        autonomous=autonomous,
    )


def make_action(
    session: Session,
    *,
    ticket: Ticket | None = None,
    action_type: ActionType = ActionType.AUTO_RESOLVE,
    confidence: float | None = 0.9,
    now: datetime | None = None,
    followup_delay: timedelta = timedelta(hours=24),
    **ticket_fields,
) -> ActionHistory:
    """An executed action (and its ticket, unless one is given).

    The plan's team is the ticket's own team when it has one, so the action does not
    move the ticket to another team behind the test's back.
    """
    ticket = ticket or make_ticket(session, **ticket_fields)
    return actions.execute(
        session,
        ticket,
        make_plan(action_type, confidence=confidence, team=ticket.assigned_team or "Network"),
        now=now or clock.now(),
        followup_delay=followup_delay,
    )
