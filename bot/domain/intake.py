"""Opening a ticket from what a person typed, once per Slack delivery."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from limits import RateLimitItem
from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput, TooManyTickets
from bot.domain import audit
from bot.domain.ratelimit import TicketLimit
from models import Ticket, TicketSource, TicketStatus

SOURCES = frozenset(TicketSource)
MAX_TEXT = 4000
USAGE = "Tell me what is wrong, for example: `/ticket my VPN keeps disconnecting`"
_USER_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_TS = re.compile(r"^([0-9]{1,12}\.[0-9]{1,8})?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters that show nothing (spaces, separators, control and format characters such
# as zero-width spaces, joiners, bidi marks, soft hyphens): a request of only these is empty.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,100}$")


@dataclass(frozen=True)
class Intake:
    ticket: Ticket
    # False when this delivery was seen before (a Slack retry): nothing new was written.
    created: bool


def open_ticket(
    session: Session,
    *,
    user_id: str,
    text: str,
    source: str,
    channel_id: str | None = None,
    thread_ts: str = "",
    team_id: str | None = None,
    event_id: str | None = None,
    user_name: str | None = None,
    private: bool = False,
    limit: TicketLimit | None = None,
    now: datetime | None = None,
) -> Intake:
    """Store a new ticket in status `new`, to be decided on off the request path.

    Args:
        session: the caller's session (flushed, not committed).
        user_id: the requester's Slack user id.
        text: what they typed; stored as typed (escaping is the view's job).
        source: slash_command, dm, mention or cli.
        channel_id, thread_ts, team_id: where in Slack it was asked.
        event_id: Slack's id for the delivery; the same id twice opens one ticket.
        user_name: the requester's display name, when known.
        private: answer the requester alone (a /ticket outside HELPDESK_CHANNELS). The
            channel it was typed in is checked but not stored, so nothing about the
            ticket can ever be posted there: its answers go to the requester's DM, and
            the DM becomes its conversation once the first answer is posted.
        limit: the per-person ticket limit (TICKET_RATE_LIMIT); a delivery seen before
            is not counted again. When its store is down the ticket is taken all the
            same, with an audit event the `limiter_unavailable` alert counts.
        now: the clock reading.

    Raises:
        InvalidInput: empty or over-long text, a malformed user id, an unknown source.
        TooManyTickets: the person is past the limit; nothing was stored.
    """
    if not isinstance(user_id, str) or not _USER_ID.match(user_id):
        raise InvalidInput("That request did not come from a Slack user I recognise.")
    if source not in SOURCES:
        raise InvalidInput(f"Unknown ticket source {source!r}.")
    for name, value in (("channel", channel_id), ("workspace", team_id)):
        if value is not None and (not isinstance(value, str) or not _SLACK_ID.match(value)):
            raise InvalidInput(f"That request names a {name} I do not recognise.")
    if not isinstance(thread_ts, str) or not _TS.match(thread_ts):
        raise InvalidInput("That request names a message I do not recognise.")
    if user_name is not None:
        user_name = _CONTROL.sub("", str(user_name))[:255] or None
    if not isinstance(text, str):
        raise InvalidInput(USAGE)
    description = _CONTROL.sub("", text).strip()
    if not _shows_something(description):
        raise InvalidInput(USAGE)
    if len(description) > MAX_TEXT:
        raise InvalidInput(
            f"That is {len(description):,} characters; please keep a ticket under "
            f"{MAX_TEXT:,} and put logs in a file or thread."
        )
    if event_id is not None and (not isinstance(event_id, str) or not _EVENT_ID.match(event_id)):
        raise InvalidInput("That request carries an event id I do not recognise.")
    now = now or clock.now()
    values: dict[str, object] = dict(
        user_id=user_id,
        user_name=user_name,
        issue_type=description.splitlines()[0][:100],
        description=description,
        status=TicketStatus.NEW,
        tags=[],
        source=source,
        source_event_id=event_id,
        slack_team_id=team_id,
        slack_channel_id=None if private else channel_id,
        slack_thread_ts="" if private else thread_ts or "",
        created_at=now,
        updated_at=now,
    )
    # One round trip: the ticket is inserted unless its delivery was seen before (Slack
    # retried it, or a concurrent delivery of the same event won the race), in which
    # case that delivery's ticket is the answer. No savepoint is needed: a conflict is
    # not an error, so the caller's transaction stays usable.
    if values.keys() != _COLUMNS:  # a column added here must be added to the INSERT too
        raise RuntimeError(f"the ticket INSERT does not set {sorted(values.keys() ^ _COLUMNS)}")
    ticket = session.scalars(_insert(session.get_bind().dialect.name),
                             {_PARAM + name: value for name, value in values.items()}).one_or_none()
    if ticket is None:
        existing = _by_event(session, event_id) if event_id is not None else None
        if existing is None:
            raise RuntimeError("a ticket was neither stored nor found by its event id")
        return Intake(existing, created=False)
    # Counted once stored: a delivery seen before is not counted again. Past the limit
    # the new row goes again, so nothing is stored whatever the caller does next.
    checked = limit.acquire(user_id) if limit is not None else None
    if checked is not None and not checked.allowed:
        session.execute(delete(Ticket).where(Ticket.ticket_id == ticket.ticket_id))
        session.expunge(ticket)
        raise _too_many(limit, checked.retry_at, now)
    if checked is not None and checked.store_down:
        audit.record(session, audit.TICKET_LIMITER_DOWN, actor_id=user_id, ticket_id=ticket.ticket_id,
                     detail={"reason": "ticket limiter unavailable"}, now=now)
    return Intake(ticket, created=True)


def _too_many(limit: TicketLimit | None, retry_at: datetime | None, now: datetime) -> TooManyTickets:
    item = limit.item if limit is not None else None
    said = (f"You've reached the limit of {_rate(item)}, so I didn't save this one."
            if item is not None else "You've opened too many tickets lately, so I didn't save this one.")
    if retry_at is not None:
        said += f" You can open another {_in_about(retry_at, now)}."
    said += " If it can't wait, please contact the service desk directly."
    return TooManyTickets(said, retry_at)


def _rate(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    per = unit if item.multiples == 1 else f"{item.multiples} {unit}s"
    return f"{item.amount} ticket{'s' if item.amount != 1 else ''} per {per}"


def _in_about(retry_at: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((retry_at - now).total_seconds() / 60))
    if minutes < 60:
        return "in about a minute" if minutes == 1 else f"in about {minutes} minutes"
    hours = math.ceil(minutes / 60)
    return "in about an hour" if hours == 1 else f"in about {hours} hours"


# The INSERT's parameters are named apart from its columns (SQLAlchemy reserves those).
_PARAM = "new_"
_COLUMNS = frozenset({"user_id", "user_name", "issue_type", "description", "status", "tags",
                      "source", "source_event_id", "slack_team_id", "slack_channel_id",
                      "slack_thread_ts", "created_at", "updated_at"})


@functools.cache
def _insert(dialect: str):
    """The ticket's INSERT ... ON CONFLICT DO NOTHING RETURNING for this database (both
    have ON CONFLICT), built once with bound parameters: it runs on every new ticket,
    and built each time with its values it cost more CPU than its round trip
    (docs/BENCHMARKS.md, "Ack CPU")."""
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return (insert(Ticket).values({name: bindparam(_PARAM + name) for name in sorted(_COLUMNS)})
            .on_conflict_do_nothing(index_elements=[Ticket.source_event_id])
            .returning(Ticket))


def _by_event(session: Session, event_id: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.source_event_id == event_id)).one_or_none()


def _shows_something(text: str) -> bool:
    return any(not (c.isspace() or unicodedata.category(c) in _INVISIBLE_CATEGORIES) for c in text)
