"""What a requester does with their own tickets from App Home: see the open ones, add
detail to one, withdraw one.

Only the requester may change their ticket (a click from anyone else is refused and
audited). Detail joins the ticket's conversation (a `ticket_messages` row, like a reply
in the thread), and the ticket is decided again on all of it when nobody has taken it;
a withdrawn ticket is closed, and stays closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput, NotAuthorized
from bot.domain import audit, conversation, tickets
from models import Awaiting, Ticket, TicketStatus

# Statuses a requester still waits on; App Home lists these.
OPEN_STATUSES = conversation.OPEN_STATUSES
MAX_DETAIL = 3000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# How many open tickets App Home shows (each takes three of the view's 100 blocks).
HOME_LIMIT = 10


@dataclass(frozen=True)
class OpenTickets:
    """A requester's open tickets, newest first, and how many there are in all."""

    tickets: list[Ticket]
    total: int


@dataclass(frozen=True)
class DetailAdded:
    ticket: Ticket
    # True when nobody has the ticket: it is to be decided again (from OPEN_STATUSES, on
    # the whole conversation).
    redecide: bool


def open_tickets_of(session: Session, user_id: str, *, limit: int = HOME_LIMIT) -> OpenTickets:
    """The requester's tickets that are not resolved or withdrawn, newest first.

    Args:
        session: a session (read only).
        user_id: the requester's Slack user id.
        limit: how many to return.
    """
    where = (Ticket.user_id == user_id, Ticket.status.in_([str(s) for s in OPEN_STATUSES]))
    found = list(session.scalars(
        select(Ticket).where(*where).order_by(Ticket.created_at.desc(), Ticket.ticket_id.desc())
        .limit(limit)
    ))
    total = len(found) if len(found) < limit else session.scalar(
        select(func.count()).select_from(Ticket).where(*where)) or 0
    return OpenTickets(found, total)


def check_may_change(session: Session, *, ticket_id: int, user_id: str,
                     now: datetime | None = None) -> Ticket:
    """The ticket, if `user_id` asked for it and it is still open (before the modal).

    Raises:
        InvalidInput: a malformed id, or the ticket is resolved or withdrawn.
        NotFound: no such ticket.
        NotAuthorized: someone else's ticket (audited).
    """
    return _mine_and_open(session, ticket_id, user_id, work="change", lock=False,
                          now=now or clock.now())


def add_detail(session: Session, *, ticket_id: int, user_id: str, text: str,
               now: datetime | None = None) -> DetailAdded:
    """Add `text` to the ticket's conversation, and say whether it is to be decided again.

    Args:
        session: the caller's session; flushed, not committed. NotAuthorized leaves its
            audit row flushed for the transaction owner to keep.
        ticket_id: the ticket.
        user_id: who submitted the detail.
        text: what they added (1 to MAX_DETAIL characters).
        now: the clock reading.

    Raises:
        InvalidInput: empty or too long text, a malformed id, a closed ticket.
        NotFound: no such ticket.
        NotAuthorized: someone else's ticket (audited).
    """
    detail = _valid_detail(text)
    now = now or clock.now()
    ticket = _mine_and_open(session, ticket_id, user_id, work="add detail to", lock=True, now=now)
    # One conversation record: the detail joins the replies (bot.domain.conversation),
    # and the agent decides on the request and all of them.
    conversation.add_detail(session, ticket, user_id=user_id, text=detail, now=now)
    ticket.updated_at = now
    redecide = not ticket.assigned_to
    if redecide:
        # A decision starts afresh: failed attempts on the old text do not count.
        ticket.decision_attempts = 0
        ticket.decision_error = ""
    # The length only: the text itself lives in the conversation, where retention redacts it.
    audit.record(session, audit.TICKET_DETAIL_ADDED, actor_id=user_id, ticket_id=ticket.ticket_id,
                 detail={"length": len(detail), "redecide": redecide}, now=now)
    return DetailAdded(ticket, redecide)


def withdraw(session: Session, *, ticket_id: int, user_id: str,
             now: datetime | None = None) -> Ticket:
    """Close the requester's ticket: nobody is to work on it any more.

    A decision in flight is dropped (its claim is released, so its act finds the claim
    gone), and the sweep never picks a closed ticket.

    Raises:
        InvalidInput: a malformed id, or the ticket is resolved or withdrawn already.
        NotFound: no such ticket.
        NotAuthorized: someone else's ticket (audited).
    """
    now = now or clock.now()
    ticket = _mine_and_open(session, ticket_id, user_id, work="withdraw", lock=True, now=now)
    previous = str(ticket.status)
    ticket.status = TicketStatus.CLOSED
    ticket.awaiting_response_from = Awaiting.NOBODY
    ticket.claim_token = None
    ticket.claimed_until = None
    ticket.updated_at = now
    audit.record(session, audit.TICKET_WITHDRAWN, actor_id=user_id, ticket_id=ticket.ticket_id,
                 detail={"previous_status": previous, "assigned_to": ticket.assigned_to,
                         "assigned_team": ticket.assigned_team}, now=now)
    return ticket


def _mine_and_open(session: Session, ticket_id: int, user_id: str, *, work: str, lock: bool,
                   now: datetime) -> Ticket:
    ticket = tickets.clicked_ticket(session, ticket_id, user_id, lock=lock)
    if ticket.user_id != user_id:
        audit.record(session, audit.TICKET_CHANGE_DENIED, actor_id=user_id, ticket_id=ticket_id,
                     detail={"work": work}, now=now)
        raise NotAuthorized(f"Only the person who asked for ticket #{ticket_id} can {work} it.")
    if ticket.status == TicketStatus.CLOSED:
        raise InvalidInput(f"Ticket #{ticket_id} was withdrawn already.")
    if ticket.status not in OPEN_STATUSES:
        raise InvalidInput(f"Ticket #{ticket_id} is resolved already.")
    return ticket


def _valid_detail(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidInput("Please write the detail to add.")
    detail = _CONTROL.sub("", text).strip()
    if not detail:
        raise InvalidInput("Please write the detail to add.")
    if len(detail) > MAX_DETAIL:
        raise InvalidInput(f"Please keep it under {MAX_DETAIL:,} characters.")
    return detail
