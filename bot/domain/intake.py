"""Opening a ticket from what a person typed, once per Slack delivery."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput
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
        now: the clock reading.

    Raises:
        InvalidInput: empty or over-long text, a malformed user id, an unknown source.
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
    if event_id is not None:
        existing = _by_event(session, event_id)
        if existing is not None:
            return Intake(existing, created=False)
    now = now or clock.now()
    ticket = Ticket(
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
    try:
        # A savepoint, so losing the race with a concurrent delivery of the same
        # event does not poison the caller's transaction.
        with session.begin_nested():
            session.add(ticket)
            session.flush()
    except IntegrityError:
        if event_id is None:
            raise
        existing = _by_event(session, event_id)
        if existing is None:
            raise
        return Intake(existing, created=False)
    return Intake(ticket, created=True)


def _by_event(session: Session, event_id: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.source_event_id == event_id)).one_or_none()


def _shows_something(text: str) -> bool:
    return any(not (c.isspace() or unicodedata.category(c) in _INVISIBLE_CATEGORIES) for c in text)
