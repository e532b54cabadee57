"""The follow-up DM a resolution owes: written with it, cancelled when it is no
longer wanted, checked once more when it is sent.

A resolution is the bot's (`ticket_resolution`) or a person's (`person_resolution`,
`person=True` below): both are followed up alike, so both are measured alike.

The DM is a slack_outbox row (purpose "followup", due at the resolution's
`followup_due_at`) written in the resolution's transaction, so it exists if and only
if the resolution does. The outbox delivers it like any other row (one claim, one
backoff, one reconcile: bot/delivery/outbox.py).

An answer or a rollback cancels it in its own transaction, with the resolution row
locked; the send locks the same row while the DM goes out. So they never cross: the
answer either lands first (the row ends `cancelled`, nothing is sent) or waits until
the DM is recorded sent. The reference system's known bug, a follow-up sent after
the person answered, cannot happen on PostgreSQL. (SQLite has no row locks; there the
send-time check narrows the window to one Slack call.)

Locks are taken in the order ticket, resolution, outbox row, as feedback and
rollback take them, so nothing here deadlocks with them. A click waits for a DM being
sent at most LOCK_WAIT (`waiting_briefly`): its ack must leave within Slack's 3 s, and
Slack can be slow; past that the click fails like an outage ("try again").
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, Update, bindparam, select, text, update
from sqlalchemy.orm import Session

from models import (
    ActionHistory,
    OutboxPurpose,
    OutboxStatus,
    PersonResolution,
    SlackOutbox,
    Ticket,
    TicketResolution,
    rowcount,
)

# Why a follow-up was cancelled (slack_outbox.cancel_reason).
ANSWERED = "answered"
ROLLED_BACK = "rolled back"
RESOLVED_AGAIN = "resolved again"
ALREADY_SENT = "already sent"
NOT_DUE = "no longer due"
GONE = "resolution gone"

LOCK_WAIT = "2s"

Resolution = TicketResolution | PersonResolution


def _model(person: bool) -> type[TicketResolution] | type[PersonResolution]:
    return PersonResolution if person else TicketResolution


def _outbox_column(person: bool):
    return SlackOutbox.person_resolution_id if person else SlackOutbox.resolution_id


@contextmanager
def waiting_briefly(session: Session) -> Iterator[None]:
    """Lock a resolution inside this block waiting at most LOCK_WAIT (PostgreSQL; SQLite
    has no row locks to wait for). Use it on the request path, where a send holding the
    lock through a slow Slack call must not hold the ack past Slack's 3 s.

    Raises:
        sqlalchemy.exc.OperationalError: the lock was not granted in time.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
    yield
    if postgres:
        session.execute(text("SET LOCAL lock_timeout = DEFAULT"))


def schedule(
    session: Session, resolution: Resolution, ticket: Ticket, *, due: datetime, now: datetime
) -> SlackOutbox:
    """Owe the requester a follow-up DM at `due` (flushed, not committed).

    A ticket resolved again (after a rollback) keeps its resolution row; any follow-up
    still owed from before is cancelled, so a resolution owes at most one.

    Args:
        session: the caller's session, the resolution's transaction.
        resolution: the bot's or a person's resolution the DM asks about (flushed: it
            has an id).
        ticket: its ticket; the DM goes to the requester.
        due: when the DM becomes due.
        now: the clock reading the row is written at.

    Returns:
        The new outbox row.
    """
    person = isinstance(resolution, PersonResolution)
    cancel(session, resolution.id, reason=RESOLVED_AGAIN, person=person)
    row = SlackOutbox(
        purpose=OutboxPurpose.FOLLOWUP, recipient=ticket.user_id,
        resolution_id=None if person else resolution.id,
        person_resolution_id=resolution.id if person else None,
        ticket_id=ticket.ticket_id, text="", status=OutboxStatus.PENDING, attempts=0,
        next_attempt_at=due, created_at=now, last_error="",
    )
    session.add(row)
    session.flush()
    return row


def cancel(session: Session, resolution_id: int, *, reason: str, person: bool = False) -> int:
    """Cancel the follow-up the resolution still owes, if any (flushed, not committed).

    Call it with the resolution row locked (FOR UPDATE), as feedback and rollback load
    it: a send in progress holds that lock, so this waits for it rather than crossing.

    Args:
        session: the caller's session.
        resolution_id: the resolution whose follow-up is no longer wanted.
        reason: why, kept on the row (ANSWERED, ROLLED_BACK...).
        person: True for a person's resolution (person_resolution.id).

    Returns:
        How many rows were cancelled (0 or 1).
    """
    return rowcount(session.execute(_cancel_statement(person),
                                    {"of_resolution": resolution_id, "why": reason}))


@functools.cache
def _cancel_statement(person: bool) -> Update:
    """`cancel`'s UPDATE, built once: on the table, not the mapped class. It runs on
    every click that answers, where the ORM's bulk-update path (and building the
    statement each time) cost more than the update's own round trip; nothing in the
    session is synchronised either way."""
    table = cast(Table, SlackOutbox.__table__)
    column = table.c.person_resolution_id if person else table.c.resolution_id
    return (
        update(table)
        .where(column == bindparam("of_resolution"),
               table.c.purpose == OutboxPurpose.FOLLOWUP,
               # A held DM is owed too: an answer given meanwhile must stop it.
               table.c.status.in_([OutboxStatus.PENDING, OutboxStatus.HELD]))
        .values(status=OutboxStatus.CANCELLED, cancel_reason=bindparam("why"), claimed_until=None)
    )


@dataclass(frozen=True)
class Owed:
    """A follow-up still wanted, with what its DM is drawn from."""

    resolution: Resolution
    ticket: Ticket
    action: ActionHistory


def lock_owed(session: Session, resolution_id: int, *, person: bool = False) -> Owed | str:
    """Lock the resolution (FOR UPDATE, until the caller's transaction ends) and say
    whether its follow-up is still wanted.

    Hold the transaction open while the DM is sent: an answer or rollback arriving
    meanwhile waits for it (see the module docstring).

    Args:
        session: the sender's session.
        resolution_id: the follow-up's resolution.
        person: True for a person's resolution (person_resolution.id).

    Returns:
        What to draw the DM from, or why it is no longer wanted.
    """
    model = _model(person)
    found = session.execute(
        select(model, Ticket, ActionHistory)
        .join(Ticket, Ticket.ticket_id == model.ticket_id)
        .outerjoin(ActionHistory, ActionHistory.id == model.action_id)
        .where(model.id == resolution_id)
        .with_for_update(of=model)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if found is None:
        return GONE
    row, ticket, action = found
    resolution = cast(Resolution, row)  # selected through a union of two models
    reason = _not_wanted(resolution, action)
    return reason if reason is not None else Owed(resolution, ticket, action)


def lock_owed_many(session: Session, resolution_ids: list[int], *,
                   person: bool = False) -> dict[int, Owed | str]:
    """`lock_owed` for many resolutions in one statement (locked in id order): what to
    draw each DM from, or why it is no longer wanted, by resolution id."""
    model = _model(person)
    found = session.execute(
        select(model, Ticket, ActionHistory)
        .join(Ticket, Ticket.ticket_id == model.ticket_id)
        .outerjoin(ActionHistory, ActionHistory.id == model.action_id)
        .where(model.id.in_(resolution_ids))
        .order_by(model.id)
        .with_for_update(of=model)
        .execution_options(populate_existing=True)
    ).all()
    owed: dict[int, Owed | str] = {}
    for row, ticket, action in found:
        resolution = cast(Resolution, row)
        reason = _not_wanted(resolution, action)
        owed[resolution.id] = reason if reason is not None else Owed(resolution, ticket, action)
    return {rid: owed.get(rid, GONE) for rid in resolution_ids}


def _not_wanted(resolution: Resolution, action: ActionHistory | None) -> str | None:
    if resolution.followup_sent_at is not None:
        return ALREADY_SENT
    # Answered in any way (feedback sets response_received_at with each of these).
    if (resolution.response_received_at is not None or resolution.resolution_confirmed is not None
            or resolution.satisfaction_score is not None):
        return ANSWERED
    if action is None or action.rolled_back:
        return ROLLED_BACK
    if resolution.followup_due_at is None:
        return NOT_DUE
    return None


def lock(session: Session, resolution_id: int, *, person: bool = False) -> None:
    """Lock the resolution (FOR UPDATE) before writing its follow-up's outbox row, in
    the order everyone else takes them; a no-op where it is held already."""
    model = _model(person)
    session.execute(select(model.id).where(model.id == resolution_id).with_for_update())


def record_sent(session: Session, resolution_id: int, *, now: datetime, person: bool = False) -> None:
    """Note on the resolution that its follow-up went out (reports read followup_sent_at)."""
    model = _model(person)
    session.execute(
        update(model).where(model.id == resolution_id)
        .values(followup_sent_at=now).execution_options(synchronize_session=False)
    )


def record_sent_many(session: Session, resolution_ids: list[int], *, now: datetime,
                     person: bool = False) -> None:
    """`record_sent` for many resolutions, in one statement."""
    if not resolution_ids:
        return
    model = _model(person)
    session.execute(
        update(model).where(model.id.in_(resolution_ids))
        .values(followup_sent_at=now).execution_options(synchronize_session=False)
    )


def record_given_up(session: Session, resolution_id: int, *, person: bool = False) -> None:
    """Slack will not take the DM (no DM with the requester, or out of attempts): the
    resolution no longer reports a follow-up as due."""
    model = _model(person)
    session.execute(
        update(model).where(model.id == resolution_id)
        .values(followup_due_at=None).execution_options(synchronize_session=False)
    )
