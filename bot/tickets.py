"""Reading tickets and remembering where they live in Slack."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import InvalidInput, NotFound
from models import ActionHistory, Ticket, TicketResolution


def parse_ticket_ref(text: str) -> int:
    """Read a ticket id as people type it: `42` or `#42`.

    Raises:
        InvalidInput: anything else.
    """
    ref = (text or "").strip().removeprefix("#")
    if not ref.isascii() or not ref.isdigit() or len(ref) > 9 or int(ref) < 1:
        raise InvalidInput("Give a ticket number, for example `/history 42`.")
    return int(ref)


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    """The ticket, or NotFound."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"Ticket #{ticket_id} does not exist.")
    return ticket


def history(session: Session, ticket_id: int) -> tuple[Ticket, Sequence[ActionHistory]]:
    """The ticket and all its action_history rows, oldest first."""
    ticket = get_ticket(session, ticket_id)
    rows = session.scalars(
        select(ActionHistory)
        .where(ActionHistory.ticket_id == ticket_id)
        .order_by(ActionHistory.executed_at, ActionHistory.id)
    ).all()
    return ticket, rows


def resolution_of(session: Session, ticket_id: int) -> TicketResolution | None:
    return session.scalars(
        select(TicketResolution).where(TicketResolution.ticket_id == ticket_id)
    ).one_or_none()


def action_by_id(session: Session, action_id) -> ActionHistory:
    action = session.get(ActionHistory, action_id)
    if action is None:
        raise NotFound("That action no longer exists.")
    return action


def attach_message(
    session: Session, ticket_id: int, *, channel_id: str, message_ts: str, thread_ts: str
) -> None:
    """Remember the bot's message about the ticket (to update it) and its thread."""
    ticket = get_ticket(session, ticket_id)
    ticket.slack_channel_id = channel_id
    ticket.slack_message_ts = message_ts
    ticket.slack_thread_ts = thread_ts
    session.flush()
