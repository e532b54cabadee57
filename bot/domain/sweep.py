"""Tickets whose decision never finished: the process died between the ack and the
act, or the decision failed.

Intake stores a ticket as `new` before acknowledging; the decision runs right after on
the background executor. If it never finishes (a crash, a deploy, a failure), the
ticket is still `new` here, and the periodic sweep decides on it. A ticket whose
decision is under way holds a claim (bot.domain.processing) and is left alone until
the claim expires; claiming is atomic, so a sweep racing the original worker, or
another sweep, acts once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from models import ActionHistory, Ticket, TicketStatus


def stale_new_tickets(session: Session, *, now: datetime, grace: timedelta, limit: int = 50) -> list[int]:
    """Ids of tickets still `new` after `grace` and not claimed by a live worker (oldest first)."""
    return list(
        session.scalars(
            select(Ticket.ticket_id)
            # A ticket with any recorded action was decided on already: one an admin
            # rolled back to `new` waits for a person, not for the bot again.
            .where(Ticket.status == TicketStatus.NEW, Ticket.agent_processed.is_(False),
                   Ticket.created_at < now - grace,
                   or_(Ticket.claimed_until.is_(None), Ticket.claimed_until <= now),
                   ~exists().where(ActionHistory.ticket_id == Ticket.ticket_id))
            .order_by(Ticket.created_at)
            .limit(limit)
        )
    )
