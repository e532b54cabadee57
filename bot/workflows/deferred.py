"""A request stored while the bot is too busy to start on it.

The decision executor's waiting room was full: the ticket (or the requester's reply to
the bot's question) is stored all the same, and the jobs' sweep decides on it within a
few minutes. A slash command says so
in its acknowledgement; a DM or a mention is answered through the outbox, written in
the request's transaction (nothing can be posted now: the executor that posts is the
one that is full).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot import views
from bot.delivery import outbox
from models import Ticket


def enqueue_saved_while_busy(session: Session, ticket: Ticket) -> None:
    """Owe the requester a word, in the ticket's thread, that it will take a while.

    Args:
        session: the request's session (flushed, not committed).
        ticket: the ticket just stored, from a DM or a mention.
    """
    if not ticket.slack_channel_id:
        return
    outbox.enqueue(session, purpose=outbox.NOTICE, channel=ticket.slack_channel_id,
                   thread_ts=ticket.slack_thread_ts or None, ticket_id=ticket.ticket_id,
                   text=views.saved_while_busy(ticket.ticket_id))


def enqueue_reply_saved_while_busy(session: Session, *, ticket_id: int, channel: str, thread_ts: str) -> None:
    """Owe the requester a word, in the thread they replied in, that their reply was
    added and its answer will take a while (the sweep decides on it).

    Args:
        session: the request's session (flushed, not committed).
        ticket_id: the ticket the reply joined.
        channel, thread_ts: where they replied.
    """
    outbox.enqueue(session, purpose=outbox.NOTICE, channel=channel, thread_ts=thread_ts,
                   ticket_id=ticket_id, text=views.reply_saved_while_busy(ticket_id))
