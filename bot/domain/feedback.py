"""The requester's verdict on a resolution: "did this solve it?" and the stars.

A resolution is the bot's (`ticket_resolution`, one per ticket) or a person's from the
team channel (`person_resolution`, named by the button): each answer lands on the record
of whoever gave the answer, so the bot's "No" stays the bot's even after a person
resolves the ticket, and a person's resolution is rated on its own record.

Only the person the ticket is for counts; anyone else's click is audited and refused.
A "No" reopens the ticket to a human team; a later "Yes" resolves it again. Any
answer or rating cancels the follow-up DM in the same transaction, with the
resolution locked: a follow-up being sent meanwhile is waited for, never crossed.

The ticket row is locked before its resolution, the order rollback and processing
use too, so a click racing a rollback waits for it instead of deadlocking.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Select, String, and_, bindparam, select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput, NotFound, NotRequester, TicketWithdrawn
from bot.domain import audit, audit_chain, followups, snapshots
from models import (
    ActionHistory,
    ActionType,
    Awaiting,
    PersonResolution,
    Ticket,
    TicketResolution,
    TicketStatus,
    bounded_lock_wait,
)

REOPENED_REASON = "requester said the answer did not solve it"
# What a plain-text input in a modal takes at most (Slack's limit).
REASON_LIMIT = 3000


@dataclass(frozen=True)
class FeedbackResult:
    """What a click did."""

    resolution: TicketResolution | PersonResolution
    ticket: Ticket
    # False when the click repeated what was already recorded: nothing was written.
    changed: bool
    # True when this click reopened the ticket.
    reopened: bool
    # True when this click resolved the ticket again (a "Yes" after a "No").
    resolved_again: bool = False

    @property
    def by_person(self) -> bool:
        """Whether the answer is about a person's resolution (not the bot's)."""
        return isinstance(self.resolution, PersonResolution)

    @property
    def ticket_moved(self) -> bool:
        """Whether the answer changed the ticket's status (the team's notices show it)."""
        return self.reopened or self.resolved_again


def record_answer(
    session: Session,
    *,
    ticket_id: int,
    user_id: str,
    solved: bool,
    default_team: str,
    person_resolution_id: int | None = None,
    now: datetime | None = None,
) -> FeedbackResult:
    """Record the requester's Yes/No to "did this solve it?".

    Args:
        session: the caller's session; flushed, not committed. NotRequester leaves its
            audit row for the transaction owner to keep (flushed, or written at its commit).
        ticket_id: the ticket the resolution is for.
        user_id: the Slack user id who clicked.
        solved: True for Yes, False for No.
        default_team: where a reopened ticket goes when the resolution named no team.
        person_resolution_id: a person's resolution of the ticket; None for the bot's.
        now: the clock reading for every timestamp written.

    Returns:
        The resolution and ticket, whether anything changed, and whether the ticket
        was reopened by this answer.

    Raises:
        InvalidInput: a malformed ticket id or answer, or a withdrawn resolution.
        NotFound: the ticket has no resolution.
        NotRequester: the clicker is not the requester (audited).
        TicketWithdrawn: the requester withdrew the ticket (audited).
    """
    if not isinstance(solved, bool):
        raise InvalidInput("The answer must be yes or no.")
    now = now or clock.now()
    ticket, resolution, action = _load(session, ticket_id, user_id, now,
                                       {"kind": "answer", "solved": solved}, person_resolution_id)
    ref = _ref(resolution)
    previous = resolution.resolution_confirmed
    if previous is solved:
        return FeedbackResult(resolution, ticket, changed=False, reopened=False)

    resolution.resolution_confirmed = solved
    _heard(session, resolution, now)
    if previous is not None:
        # The requester changed their mind: worth knowing when the numbers move.
        audit.record(
            session, audit.FEEDBACK_CHANGED, actor_id=user_id, ticket_id=ticket.ticket_id,
            action_id=resolution.action_id,
            detail={"kind": "answer", "from": previous, "to": solved}, now=now,
        )
    if solved:
        if previous is False:
            # A "Yes" after a "No" resolves the ticket again; recorded so /history shows it.
            _change_ticket(session, ticket, user_id, ActionType.CONFIRM, now, params=ref,
                           apply=lambda: _resolve(ticket, now))
        session.flush()
        return FeedbackResult(resolution, ticket, changed=True, reopened=False,
                              resolved_again=previous is False)

    if isinstance(resolution, PersonResolution):
        team = resolution.team
    else:
        team = (action.action_params or {}).get("team") if action else None
    team = team or default_team
    resolution.reopened = True
    resolution.reopened_at = now
    resolution.reopened_reason = REOPENED_REASON
    _change_ticket(session, ticket, user_id, ActionType.REOPEN, now,
                   params={**ref, "team": team, "reason": REOPENED_REASON},
                   apply=lambda: _reopen(ticket, team))
    session.flush()
    return FeedbackResult(resolution, ticket, changed=True, reopened=True)


def record_reason(
    session: Session,
    *,
    ticket_id: int,
    user_id: str,
    text: str,
    person_resolution_id: int | None = None,
    now: datetime | None = None,
) -> FeedbackResult:
    """Record what the requester says did not work, after their "No".

    The No itself was recorded when it was clicked (the ticket reopened then); this
    only adds their words, in `user_feedback_text`, replacing what they wrote before.

    Args:
        session: the caller's session; flushed, not committed. NotRequester leaves its
            audit row for the transaction owner to keep (flushed, or written at its commit).
        ticket_id: the ticket the resolution is for.
        user_id: the Slack user id who submitted.
        text: their words as typed; blank leaves what was stored.
        person_resolution_id: a person's resolution of the ticket; None for the bot's.
        now: the clock reading for every timestamp written.

    Returns:
        The resolution and ticket; `changed` is False when nothing new was written.

    Raises:
        InvalidInput: not text, too long, a withdrawn resolution, or the requester's
            answer is no longer No.
        NotFound: the ticket has no resolution.
        NotRequester: the submitter is not the requester (audited).
    """
    if not isinstance(text, str):
        raise InvalidInput("Write what did not work, or close the form.")
    text = text.strip()
    if len(text) > REASON_LIMIT:
        raise InvalidInput(f"That is {len(text)} characters long; keep it to {REASON_LIMIT}.")
    now = now or clock.now()
    ticket, resolution, _ = _load(session, ticket_id, user_id, now,
                                  {"kind": "reason"}, person_resolution_id)
    if resolution.resolution_confirmed is not False:
        raise InvalidInput("Your answer is not No any more (you said it solved it), so "
                           "nothing was added.")
    if not text or resolution.user_feedback_text == text:
        return FeedbackResult(resolution, ticket, changed=False, reopened=False)
    resolution.user_feedback_text = text
    resolution.updated_at = now
    session.flush()
    return FeedbackResult(resolution, ticket, changed=True, reopened=False)


def record_rating(
    session: Session,
    *,
    ticket_id: int,
    user_id: str,
    score: int,
    person_resolution_id: int | None = None,
    now: datetime | None = None,
) -> FeedbackResult:
    """Record the requester's 1-5 star rating; the last one wins.

    Args:
        session: the caller's session; flushed, not committed. NotRequester leaves its
            audit row for the transaction owner to keep (flushed, or written at its commit).
        ticket_id: the ticket the resolution is for.
        user_id: the Slack user id who clicked.
        score: 1 to 5.
        person_resolution_id: a person's resolution of the ticket; None for the bot's.
        now: the clock reading for every timestamp written.

    Returns:
        The resolution and ticket; `changed` is False when the score was already this.

    Raises:
        InvalidInput: a malformed ticket id or score, or a withdrawn resolution.
        NotFound: the ticket has no resolution.
        NotRequester: the clicker is not the requester (audited).
        TicketWithdrawn: the requester withdrew the ticket (audited).
    """
    # bool is an int in Python; a True rating is a bug, not a 1.
    if type(score) is not int or not 1 <= score <= 5:
        raise InvalidInput("A rating is a whole number of stars from 1 to 5.")
    now = now or clock.now()
    ticket, resolution, _ = _load(session, ticket_id, user_id, now,
                                  {"kind": "rating", "score": score}, person_resolution_id)
    if resolution.satisfaction_score == score:
        return FeedbackResult(resolution, ticket, changed=False, reopened=False)
    resolution.satisfaction_score = score
    _heard(session, resolution, now)
    session.flush()
    return FeedbackResult(resolution, ticket, changed=True, reopened=False)


def _load(
    session: Session, ticket_id: int, user_id: str, now: datetime, detail: dict,
    person_resolution_id: int | None,
) -> tuple[Ticket, TicketResolution | PersonResolution, ActionHistory | None]:
    """Lock the ticket and the resolution answered and check the clicker may answer."""
    if type(ticket_id) is not int or ticket_id <= 0:
        raise InvalidInput("That is not a ticket number.")
    if person_resolution_id is not None and (type(person_resolution_id) is not int
                                             or person_resolution_id <= 0):
        raise InvalidInput("That is not a resolution of this ticket.")
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidInput("Who clicked is unknown; try again from Slack.")
    # One round trip: the ticket and the resolution locked (in that order, the order
    # rollback and processing take them), the action read with them. For someone
    # else's click the audit chain's head is reserved in it too (`_locking`), so the
    # refusal's row and its entry are one more, and the commit.
    reserve = audit_chain.may_reserve(session)
    plain, reserving = _locking(person_resolution_id is not None)
    found = session.execute(reserving if reserve else plain, {
        "ticket_id": ticket_id, "clicker": user_id, "person_resolution_id": person_resolution_id,
    }).one_or_none()
    ticket: Ticket | None = found[0] if found is not None else None
    resolution = cast(TicketResolution | PersonResolution | None,
                      found[1] if found is not None else None)
    action: ActionHistory | None = found[2] if found is not None else None
    if ticket is None or resolution is None:
        whose = "the bot" if person_resolution_id is None else "the helpdesk"
        raise NotFound(f"Ticket #{ticket_id} has no answer from {whose} to give feedback on.")
    if person_resolution_id is not None:
        detail = {**detail, "person_resolution_id": person_resolution_id}
    if user_id != ticket.user_id:
        audit.record(session, audit.FEEDBACK_WRONG_USER, actor_id=user_id,
                     ticket_id=ticket_id, action_id=resolution.action_id, detail=detail, now=now,
                     reservation=audit_chain.taken(session, found) if reserve else None)
        raise NotRequester(
            f"Only the person who asked for help (<@{ticket.user_id}>) can answer this."
        )
    if ticket.status == TicketStatus.CLOSED:
        # Withdrawn: a Yes or stars on an old answer must not resolve it again, nor a No
        # reopen it. Only the attempt is kept.
        audit.record(session, audit.FEEDBACK_ON_WITHDRAWN, actor_id=user_id, ticket_id=ticket_id,
                     action_id=resolution.action_id, detail=detail, now=now)
        raise TicketWithdrawn(f"You withdrew ticket #{ticket_id}, so this answer was not recorded. "
                              "Open a new ticket if you still need help.")
    if action is not None and action.rolled_back:
        raise InvalidInput("This answer was withdrawn by an admin; nothing to rate.")
    return ticket, resolution, action


@functools.cache
def _locking(person: bool) -> tuple[Select[*tuple[Any, ...]], Select[*tuple[Any, ...]]]:
    """The statement that locks a click's ticket and resolution and reads them with
    the action: plain, and reserving the audit chain's head for a clicker who is not
    the requester. Built once; parameters: ticket_id, person_resolution_id (a
    helpdesk person's resolution; None for the bot's), clicker.

    A follow-up being sent holds the resolution: wait for it at most LOCK_WAIT, the
    ack must leave within Slack's 3 s. populate_existing: after waiting on a lock, see
    the winner's commit.
    """
    ticket_id = bindparam("ticket_id", type_=Integer)
    model: type[TicketResolution] | type[PersonResolution]
    if not person:
        model, which = TicketResolution, TicketResolution.ticket_id == ticket_id
    else:
        # Both ids come from the button: the resolution must be this ticket's.
        model, which = PersonResolution, and_(
            PersonResolution.id == bindparam("person_resolution_id", type_=Integer),
            PersonResolution.ticket_id == ticket_id)
    rows = (select(Ticket, model, ActionHistory).select_from(Ticket)
            .join(model, which)
            .outerjoin(ActionHistory, ActionHistory.id == model.action_id)
            .where(Ticket.ticket_id == ticket_id)
            .with_for_update(of=[Ticket, model])
            .execution_options(populate_existing=True, **bounded_lock_wait(followups.LOCK_WAIT)))
    stranger = Ticket.user_id != bindparam("clicker", type_=String)
    return rows, audit_chain.reserving(rows, stranger)


def _heard(session: Session, resolution: TicketResolution | PersonResolution, now: datetime) -> None:
    # The requester has answered: no follow-up asks them again.
    resolution.response_received_at = resolution.response_received_at or now
    resolution.updated_at = now
    followups.cancel(session, resolution.id, reason=followups.ANSWERED,
                     person=isinstance(resolution, PersonResolution))


def _ref(resolution: TicketResolution | PersonResolution) -> dict:
    """How a REOPEN or CONFIRM record names the resolution it answers."""
    if isinstance(resolution, PersonResolution):
        return {"person_resolution_id": resolution.id}
    return {"resolution_id": resolution.id}


def _change_ticket(
    session: Session, ticket: Ticket, user_id: str, action_type: ActionType, now: datetime,
    *, params: dict, apply: Callable[[], None],
) -> ActionHistory:
    # The requester's change goes in the history like any action, so /history tells
    # the whole story and a later rollback sees why the ticket moved.
    before = snapshots.snapshot(ticket)
    apply()
    ticket.updated_at = now
    row = ActionHistory(
        ticket_id=ticket.ticket_id, action_type=action_type, action_params=params,
        executed_at=now, executed_by=user_id, autonomous=False, confidence_score=None,
        agent_reasoning="", rollback_possible=False,
        before_state=before, after_state=snapshots.snapshot(ticket),
    )
    session.add(row)
    return row


def _reopen(ticket: Ticket, team: str) -> None:
    ticket.status = TicketStatus.OPEN
    ticket.assigned_team = team
    ticket.awaiting_response_from = Awaiting.SUPPORT
    # Not resolved any more; a later "Yes" stamps a new time.
    ticket.resolved_at = None


def _resolve(ticket: Ticket, now: datetime) -> None:
    ticket.status = TicketStatus.RESOLVED
    ticket.resolved_at = now
    ticket.awaiting_response_from = Awaiting.NOBODY
