"""The clarification loop: the requester's replies in the thread of the bot's question.

When the bot asks for detail (REQUEST_CLARIFICATION, the ticket `awaiting_user`), a reply
by the requester in that thread joins the same ticket as a `ticket_messages` row, with an
audit event, and the ticket is decided again on the whole conversation through the same
claim as its first decision (bot.domain.processing): the claim is only granted while a
reply waits, and the act marks the replies it decided on, so one reply is never decided
twice. After CLARIFICATION_ROUNDS rounds without a confident answer, or no reply within
CLARIFICATION_TIMEOUT, the ticket goes to human triage with the conversation.

Only the thread of a ticket awaiting its requester is read; anything else (another
thread, another person in the thread) writes nothing. Once an admin has rolled back an
action on a ticket, a person has it: the bot reads no more replies on it, and neither
decides again nor times it out. Everything here only flushes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput
from bot.domain import audit
from bot.domain.intake import MAX_TEXT
from models import ActionHistory, ActionType, MessageKind, Ticket, TicketMessage, TicketStatus

# Audit event: the requester added to their ticket (detail: the message's id and round).
CLARIFICATION_REPLY = "clarification_reply"
# What a re-decision after a reply is claimed from.
AWAITING = frozenset({TicketStatus.AWAITING_USER})
# What a re-decision after added detail, or after anything added while a decision ran,
# is claimed from: every status a requester still waits on (nobody has it: `waits_for_bot`).
OPEN_STATUSES = frozenset({TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.IN_PROGRESS,
                           TicketStatus.AWAITING_USER, TicketStatus.ESCALATED})
# How the requester's first message and their replies are joined for the agent.
SEPARATOR = "\n\n"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_TS = re.compile(r"^[0-9]{1,12}\.[0-9]{1,8}$")
_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,100}$")


@dataclass(frozen=True)
class Reply:
    """A reply added to a ticket."""

    ticket_id: int
    message: TicketMessage
    # False when this message was added before (a retried or second delivery).
    created: bool


def ticket_in_thread(session: Session, *, channel: str, thread_ts: str, user_id: str) -> Ticket | None:
    """The ticket awaiting `user_id`'s reply in this thread (the latest, if several), or None.

    Args:
        session: the caller's session (read only).
        channel: the channel of the reply.
        thread_ts: the thread it was written in (the bot's question's thread).
        user_id: who wrote it; only the requester's replies count.
    """
    return session.scalars(
        select(Ticket)
        .where(Ticket.slack_channel_id == channel, Ticket.slack_thread_ts == thread_ts,
               Ticket.user_id == user_id, Ticket.status == TicketStatus.AWAITING_USER,
               not_rolled_back())
        .order_by(Ticket.ticket_id.desc())
        .limit(1)
    ).first()


def add_reply(
    session: Session,
    *,
    channel: str | None,
    thread_ts: str | None,
    ts: str | None,
    user_id: str | None,
    text: object,
    event_id: str | None = None,
    now: datetime | None = None,
) -> Reply | None:
    """Add a reply to the ticket the bot asked about in this thread.

    Args:
        session: the caller's session (flushed, not committed).
        channel, thread_ts, ts: where the reply was written, and its own ts.
        user_id: who wrote it.
        text: what they wrote (stored as typed; escaping is the view's job).
        event_id: Slack's id for the delivery, kept with the message.
        now: the clock reading.

    Returns:
        The reply; None when the thread is not one where a ticket awaits this person's
        reply, or the reply shows nothing: then nothing was written.

    Raises:
        InvalidInput: a reply over the length a ticket may have.
    """
    if not all(isinstance(v, str) and _SLACK_ID.match(v) for v in (channel, user_id)):
        return None
    if not all(isinstance(v, str) and _TS.match(v) for v in (thread_ts, ts)) or ts == thread_ts:
        return None
    assert channel is not None and user_id is not None and thread_ts is not None and ts is not None
    written = _CONTROL.sub("", text).strip() if isinstance(text, str) else ""
    if not written:
        return None
    ticket = ticket_in_thread(session, channel=channel, thread_ts=thread_ts, user_id=user_id)
    if ticket is None:
        return None
    if len(written) > MAX_TEXT:
        raise InvalidInput(
            f"That is {len(written):,} characters; please keep a reply under {MAX_TEXT:,} "
            "and put logs in a file."
        )
    existing = _by_ts(session, channel, ts)
    if existing is not None:
        return Reply(existing.ticket_id, existing, created=False)
    now = now or clock.now()
    message = TicketMessage(
        ticket_id=ticket.ticket_id, author_id=user_id, text=written, created_at=now,
        slack_channel_id=channel, slack_ts=ts,
        event_id=event_id if isinstance(event_id, str) and _EVENT_ID.match(event_id) else None,
    )
    try:
        # A savepoint: losing the race with another delivery of the same message
        # leaves the caller's transaction usable.
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        existing = _by_ts(session, channel, ts)
        if existing is None:
            raise
        return Reply(existing.ticket_id, existing, created=False)
    audit.record(session, CLARIFICATION_REPLY, actor_id=user_id, ticket_id=ticket.ticket_id,
                 detail={"message_id": message.id, "round": rounds(replies(session, ticket.ticket_id))},
                 now=now)
    return Reply(ticket.ticket_id, message, created=True)


def add_detail(session: Session, ticket: Ticket, *, user_id: str, text: str,
               now: datetime) -> TicketMessage:
    """Add detail the requester wrote in App Home to the ticket's conversation (flushed).

    It waits for a decision like a reply (the caller decides whether one is owed: a
    ticket a person has is theirs). The caller checks who may add it and the text.
    """
    message = TicketMessage(ticket_id=ticket.ticket_id, kind=MessageKind.DETAIL, author_id=user_id,
                            text=text, created_at=now)
    session.add(message)
    session.flush()
    return message


def replies(session: Session, ticket_id: int) -> Sequence[TicketMessage]:
    """What the requester added to a ticket (replies and detail), oldest first."""
    return session.scalars(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket_id).order_by(TicketMessage.id)
    ).all()


def rounds(messages: Sequence[TicketMessage]) -> int:
    """Rounds of replies: one per decision taken on replies, and one more for replies that
    wait for theirs (two messages in a row before the bot answers are one round)."""
    decided = {m.decided_action_id for m in messages if m.decided_action_id is not None}
    waiting = any(m.decided_action_id is None for m in messages)
    return len(decided) + (1 if waiting else 0)


def waiting(messages: Sequence[TicketMessage]) -> tuple[int, ...]:
    """The ids of the replies no decision has taken into account yet."""
    return tuple(m.id for m in messages if m.decided_action_id is None)


def conversation_text(description: str, messages: Sequence[TicketMessage]) -> str:
    """What the agent decides on: the request, then every reply and added detail, oldest
    first."""
    return SEPARATOR.join([description, *(m.text for m in messages if m.text)])


def has_waiting_reply() -> ColumnElement[bool]:
    """SQL: the ticket has a reply no decision has taken into account yet."""
    return exists().where(TicketMessage.ticket_id == Ticket.ticket_id,
                          TicketMessage.decided_action_id.is_(None))


def anything_waits(session: Session, ticket_id: int) -> bool:
    """Whether something the requester added to the ticket waits for a decision: one
    indexed read, where a claim on `redecidable()` is an UPDATE, a read of the ticket and
    a read of its last action. False means no such claim can succeed."""
    return bool(session.scalar(select(
        exists().where(TicketMessage.ticket_id == ticket_id, TicketMessage.decided_action_id.is_(None)))))


def not_rolled_back() -> ColumnElement[bool]:
    """SQL: no admin rolled back an action on the ticket. After a rollback a person has
    the ticket (the team was told): the bot neither reads replies on it nor decides again."""
    return ~exists().where(ActionHistory.ticket_id == Ticket.ticket_id,
                           ActionHistory.action_type == ActionType.ROLLBACK)


def redecidable() -> ColumnElement[bool]:
    """SQL: a reply waits for a decision the bot may still take."""
    return and_(has_waiting_reply(), not_rolled_back())


def waits_for_bot() -> ColumnElement[bool]:
    """SQL: something the requester added waits for a decision the bot may still take, and
    no person has the ticket (detail for a holder is theirs to read, not the bot's)."""
    return and_(redecidable(), Ticket.assigned_to.is_(None))


def mark_decided(session: Session, message_ids: Collection[int], action_id: uuid.UUID) -> None:
    """Record that `action_id` decided on these replies (flushed)."""
    if message_ids:
        session.execute(
            update(TicketMessage)
            .where(TicketMessage.id.in_(list(message_ids)), TicketMessage.decided_action_id.is_(None))
            .values(decided_action_id=action_id)
            .execution_options(synchronize_session=False)
        )


def stale_replies(session: Session, *, now: datetime, grace: timedelta, limit: int = 50) -> list[int]:
    """Tickets nobody has with a reply or added detail still waiting for its decision
    after `grace` (the process that took it died, or there was no room to decide), oldest
    first."""
    oldest = (select(func.min(TicketMessage.created_at))
              .where(TicketMessage.ticket_id == Ticket.ticket_id,
                     TicketMessage.decided_action_id.is_(None))
              .scalar_subquery())
    return list(session.scalars(
        select(Ticket.ticket_id)
        .where(Ticket.status.in_([str(s) for s in OPEN_STATUSES]), waits_for_bot(),
               oldest < now - grace, _unclaimed(now))
        .order_by(oldest)
        .limit(limit)
    ))


def asked_before() -> ColumnElement[datetime]:
    """SQL: when the bot last acted on the ticket (for one awaiting its requester: when it asked)."""
    return (select(func.max(ActionHistory.executed_at))
            .where(ActionHistory.ticket_id == Ticket.ticket_id)
            .scalar_subquery())


def unanswered(now: datetime, timeout: timedelta) -> ColumnElement[bool]:
    """SQL: the bot asked more than `timeout` ago, no reply waits for a decision, and the
    bot may still act on the ticket."""
    return and_(~has_waiting_reply(), not_rolled_back(), asked_before() <= now - timeout)


def timed_out(session: Session, *, now: datetime, timeout: timedelta, limit: int = 50) -> list[int]:
    """Tickets whose requester has not replied within `timeout` of the bot's question."""
    return list(session.scalars(
        select(Ticket.ticket_id)
        .where(Ticket.status == TicketStatus.AWAITING_USER, unanswered(now, timeout), _unclaimed(now))
        .order_by(Ticket.ticket_id)
        .limit(limit)
    ))


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(Ticket.claimed_until.is_(None), Ticket.claimed_until <= now)


def _by_ts(session: Session, channel: str, ts: str) -> TicketMessage | None:
    return session.scalars(
        select(TicketMessage).where(TicketMessage.slack_channel_id == channel, TicketMessage.slack_ts == ts)
    ).one_or_none()
