"""A ticket from someone's message: a :ticket: reaction or the "Create a ticket" shortcut.

The ticket is the message author's, with the message's text, opened through intake
like any other (so whatever limits intake applies hold for the author). One per
message: the (channel, message ts) pair is unique on `tickets`, so two people reacting
at the same moment, or Slack retrying an event, open one ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput
from bot.domain import audit, intake
from models import Ticket, TicketSource

_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,8}")
SOURCES = frozenset({TicketSource.REACTION, TicketSource.SHORTCUT})
NOT_A_PERSON = "I can only open a ticket for a person's message, not for a bot's or an app's."
NO_TEXT = "That message has no text I could open a ticket with."


@dataclass(frozen=True)
class Message:
    """The message a ticket is asked for, as Slack gave it."""

    channel_id: str
    ts: str
    author_id: str | None
    text: str
    # The thread it is in (its own ts for a top-level message): where answers go.
    thread_ts: str = ""
    # A bot's or an app's post (bot_id, or a subtype such as bot_message).
    from_bot: bool = False


@dataclass(frozen=True)
class FromMessage:
    ticket: Ticket
    # False when the message had its ticket already: nothing new was written.
    created: bool


def open_from_message(
    session: Session,
    message: Message,
    *,
    reporter_id: str,
    source: str,
    team_id: str | None = None,
    now: datetime | None = None,
) -> FromMessage:
    """Open the ticket for `message`'s author, or find the one opened for it before.

    Args:
        session: the caller's session (flushed, not committed).
        message: the message, fetched from Slack or carried by the shortcut.
        reporter_id: who reacted or used the shortcut (audited as the actor).
        source: reaction or shortcut.
        team_id: the workspace.
        now: the clock reading.

    Returns:
        The ticket and whether this call opened it.

    Raises:
        InvalidInput: a bot's message, a message without text, or anything intake refuses.
    """
    if source not in SOURCES:
        raise InvalidInput(f"Unknown ticket source {source!r}.")
    if not isinstance(message.ts, str) or not _TS.fullmatch(message.ts):
        raise InvalidInput("That request names a message I do not recognise.")
    existing = _by_message(session, message.channel_id, message.ts)
    if existing is not None:
        return FromMessage(existing, created=False)
    if message.from_bot or not message.author_id:
        raise InvalidInput(NOT_A_PERSON)
    if not isinstance(message.text, str) or not message.text.strip():
        raise InvalidInput(NO_TEXT)
    now = now or clock.now()
    try:
        # A savepoint: losing the race with a concurrent reaction on the same message
        # leaves the caller's transaction usable, to answer with the winner's ticket.
        with session.begin_nested():
            opened = intake.open_ticket(
                session, user_id=message.author_id, text=message.text, source=source,
                channel_id=message.channel_id, thread_ts=message.thread_ts or message.ts,
                team_id=team_id, now=now,
            )
            ticket = opened.ticket
            ticket.origin_channel_id = message.channel_id
            ticket.origin_message_ts = message.ts
            session.flush()
    except IntegrityError:
        existing = _by_message(session, message.channel_id, message.ts)
        if existing is None:
            raise
        return FromMessage(existing, created=False)
    audit.record(session, audit.TICKET_FROM_MESSAGE, actor_id=reporter_id, ticket_id=ticket.ticket_id,
                 detail={"via": str(source), "channel": message.channel_id, "message_ts": message.ts,
                         "author": message.author_id}, now=now)
    return FromMessage(ticket, created=True)


def _by_message(session: Session, channel_id: str, ts: str) -> Ticket | None:
    return session.scalars(
        select(Ticket).where(Ticket.origin_channel_id == channel_id, Ticket.origin_message_ts == ts)
    ).one_or_none()
