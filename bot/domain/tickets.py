"""Reading tickets and remembering where they live in Slack."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.errors import InvalidInput, NotFound
from models import ActionHistory, PersonResolution, Ticket, TicketResolution


def parse_ticket_ref(text: str) -> int:
    """Read a ticket id as people type it: `42` or `#42`.

    Raises:
        InvalidInput: anything else.
    """
    ref = (text or "").strip().removeprefix("#")
    if not ref.isascii() or not ref.isdigit() or len(ref) > 9 or int(ref) < 1:
        raise InvalidInput("Give a ticket number, for example `/history 42`.")
    return int(ref)


def clicked_ticket(session: Session, ticket_id: int, user_id: str, *, lock: bool) -> Ticket:
    """The ticket a button or form names, for the person who clicked (locked FOR UPDATE
    when `lock`); who may act on it is the caller's check.

    Raises:
        InvalidInput: the ticket number or the clicker is not valid.
        NotFound: no such ticket.
    """
    if type(ticket_id) is not int or ticket_id <= 0:
        raise InvalidInput("That is not a ticket number.")
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidInput("Who clicked is unknown; try again from Slack.")
    query = select(Ticket).where(Ticket.ticket_id == ticket_id)
    if lock:
        # populate_existing: after waiting on the lock, see the winner's commit.
        query = query.with_for_update().execution_options(populate_existing=True)
    ticket = session.scalars(query).one_or_none()
    if ticket is None:
        raise NotFound(f"Ticket #{ticket_id} does not exist.")
    return ticket


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


def requester_said(session: Session, ticket_id: int) -> dict[tuple[str, int], str]:
    """What the requester said did not work, per resolution of the ticket: keyed as
    REOPEN records name them (`("resolution_id", id)`, `("person_resolution_id", id)`)."""
    said: dict[tuple[str, int], str] = {}
    for key, model in (("resolution_id", TicketResolution), ("person_resolution_id", PersonResolution)):
        rows = session.execute(
            select(model.id, model.user_feedback_text)
            .where(model.ticket_id == ticket_id, model.user_feedback_text != "")
        ).all()
        said.update({(key, row.id): row.user_feedback_text for row in rows})
    return said


def answered_by_bot(session: Session, ticket_id: int) -> tuple[Ticket, TicketResolution, ActionHistory]:
    """The ticket, the bot's resolution of it and the action it answered, in one read
    (a click's redraw draws the message from the three).

    Raises:
        NotFound: no such ticket, or its action no longer exists.
        LookupError: the ticket has no resolution by the bot (resolutions are not deleted).
    """
    found = session.execute(
        select(Ticket, TicketResolution, ActionHistory).select_from(Ticket)
        .outerjoin(TicketResolution, TicketResolution.ticket_id == Ticket.ticket_id)
        .outerjoin(ActionHistory, ActionHistory.id == TicketResolution.action_id)
        .where(Ticket.ticket_id == ticket_id)
    ).one_or_none()
    if found is None:
        raise NotFound(f"Ticket #{ticket_id} does not exist.")
    ticket, resolution, action = found
    if resolution is None:
        raise LookupError(f"ticket {ticket_id} has no resolution")
    if action is None:
        raise NotFound("That action no longer exists.")
    return ticket, resolution, action


def action_by_id(session: Session, action_id) -> ActionHistory:
    action = session.get(ActionHistory, action_id)
    if action is None:
        raise NotFound("That action no longer exists.")
    return action


def attach_message(
    session: Session, ticket_id: int, *, channel_id: str, message_ts: str, thread_ts: str
) -> None:
    """Remember the bot's message about the ticket (to update it) and its thread.

    One UPDATE, no load: this runs after every post the bot makes about a ticket.
    A ticket deleted meanwhile has nothing to remember it on.
    """
    session.execute(
        update(Ticket)
        .where(Ticket.ticket_id == ticket_id)
        .values(slack_channel_id=channel_id, slack_message_ts=message_ts, slack_thread_ts=thread_ts)
        .execution_options(synchronize_session=False)
    )
