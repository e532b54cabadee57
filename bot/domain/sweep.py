"""Tickets whose decision never ran: the process died between the ack and the agent.

Intake stores a ticket as `new` before acknowledging; the decision runs right after on
the background executor. If that never happens (a crash, a deploy), the ticket is
still `new` here, and the periodic sweep decides on it. Deciding is idempotent (the
ticket row is locked and must still be `new`), so a sweep racing the original worker
acts once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from models import ActionHistory, Ticket, TicketStatus


def stale_new_tickets(session: Session, *, now: datetime, grace: timedelta, limit: int = 50) -> list[int]:
    """Ids of tickets still `new` after `grace` (oldest first)."""
    return list(
        session.scalars(
            select(Ticket.ticket_id)
            # A ticket with any recorded action was decided on already: one an admin
            # rolled back to `new` waits for a person, not for the bot again.
            .where(Ticket.status == TicketStatus.NEW, Ticket.agent_processed.is_(False),
                   Ticket.created_at < now - grace,
                   ~exists().where(ActionHistory.ticket_id == Ticket.ticket_id))
            .order_by(Ticket.created_at)
            .limit(limit)
        )
    )
