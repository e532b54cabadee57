"""A person's work on a ticket from the team's channel: take it, resolve it.

Only members of the channel the ticket's team works in (TEAM_CHANNELS, else
ESCALATION_CHANNEL) and helpdesk admins may; whether someone is one is a question for
Slack, asked by the caller (`MayAct`) so this module stays free of it. A refusal is
audited. Each take and resolve is an action_history row with before/after snapshots,
so /history shows it and an admin can roll it back; a resolve also writes the person's
resolution (its own outcome record, see models.person_resolution) and the follow-up
DM it owes, like the bot's auto-resolution.

The ticket row is locked (FOR UPDATE) for the change, in the order feedback, rollback
and processing take it, so two people clicking at once act one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput, NotAuthorized
from bot.core.settings import Settings
from bot.domain import audit, followups, snapshots, tickets
from models import ActionHistory, ActionType, Awaiting, PersonResolution, Ticket, TicketStatus

# Slack's limit on a plain_text_input: the modal cannot send more.
NOTE_LIMIT = 3000

# Answers "may this person act on tickets of the team working in this channel?";
# the channel is None when the team has none (then only admins may).
MayAct = Callable[[str | None], bool]


class Work(StrEnum):
    """What a person asked to do (audited with a refusal)."""

    TAKE = "take"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class TakeResult:
    """What a take did."""

    ticket: Ticket
    team: str
    # None when the person had the ticket already: nothing was written.
    action: ActionHistory | None
    # Who had it before (None: nobody).
    previous: str | None

    @property
    def changed(self) -> bool:
        return self.action is not None


@dataclass(frozen=True)
class ResolveResult:
    """A person's resolution that happened."""

    ticket: Ticket
    team: str
    action: ActionHistory
    resolution: PersonResolution


def team_of(ticket: Ticket, settings: Settings) -> str:
    """The team a ticket is with: its assigned team, else DEFAULT_TEAM (human triage)."""
    return ticket.assigned_team or settings.default_team


def channel_of(ticket: Ticket, settings: Settings) -> str | None:
    """The channel for this ticket's team (every team notice goes there)."""
    return settings.channel_for_team(team_of(ticket, settings))


def check_may_resolve(
    session: Session, *, ticket_id: int, user_id: str, settings: Settings, may_act: MayAct,
    now: datetime | None = None,
) -> Ticket:
    """Check, before the resolve modal opens, that this person may resolve the ticket.

    Nothing is written but a refusal's audit row.

    Args:
        session: the caller's session; a NotAuthorized leaves its audit row flushed.
        ticket_id: the ticket.
        user_id: who clicked Resolve.
        settings: teams, channels and the default team.
        may_act: the membership check (see `MayAct`).
        now: the clock reading for the audit row.

    Returns:
        The ticket, for the modal.

    Raises:
        InvalidInput: a malformed id, or the ticket is resolved already.
        NotFound: no such ticket.
        NotAuthorized: not a member of the team's channel nor an admin (audited).
    """
    now = now or clock.now()
    ticket = tickets.clicked_ticket(session, ticket_id, user_id, lock=False)
    _authorize(session, ticket, user_id, settings, may_act, Work.RESOLVE, now)
    _refuse_resolved(ticket)
    return ticket


def take_ticket(
    session: Session, *, ticket_id: int, user_id: str, settings: Settings, may_act: MayAct,
    now: datetime | None = None,
) -> TakeResult:
    """Assign the ticket to the person who clicked "Take it".

    Args:
        session: the caller's session; flushed, not committed. NotAuthorized leaves
            its audit row flushed for the transaction owner to keep.
        ticket_id: the ticket.
        user_id: the Slack user id who clicked.
        settings: teams, channels and the default team.
        may_act: the membership check (see `MayAct`).
        now: the clock reading for every timestamp written.

    Returns:
        The ticket, its team, the TAKE row (None if they had it already) and who had
        it before.

    Raises:
        InvalidInput: a malformed id, or the ticket is resolved already.
        NotFound: no such ticket.
        NotAuthorized: not a member of the team's channel nor an admin (audited).
    """
    now = now or clock.now()
    ticket = _authorized_and_locked(session, ticket_id, user_id, settings, may_act, Work.TAKE, now)
    _refuse_resolved(ticket)
    team, previous = team_of(ticket, settings), ticket.assigned_to
    if previous == user_id:
        return TakeResult(ticket, team, None, previous)

    def take() -> None:
        ticket.assigned_to = user_id
        ticket.status = TicketStatus.IN_PROGRESS
        ticket.awaiting_response_from = Awaiting.SUPPORT

    action = _record(session, ticket, user_id, ActionType.TAKE, now, apply=take, reasoning="",
                     params={"team": team, "assignee": user_id, "previous_assignee": previous})
    session.flush()
    return TakeResult(ticket, team, action, previous)


def resolve_ticket(
    session: Session, *, ticket_id: int, user_id: str, note: str, settings: Settings,
    may_act: MayAct, now: datetime | None = None,
) -> ResolveResult:
    """Resolve the ticket with the person's note, and owe the requester its follow-up.

    Args:
        session: the caller's session; flushed, not committed. NotAuthorized leaves
            its audit row flushed for the transaction owner to keep.
        ticket_id: the ticket.
        user_id: the Slack user id who submitted the note.
        note: what they did, as the requester will read it (1 to 3,000 characters).
        settings: teams, channels, the default team and FOLLOWUP_DELAY.
        may_act: the membership check (see `MayAct`).
        now: the clock reading for every timestamp written.

    Returns:
        The ticket, its team, the RESOLVE row and the person's resolution.

    Raises:
        InvalidInput: an empty or too long note, a malformed id, or the ticket is
            resolved already.
        NotFound: no such ticket.
        NotAuthorized: not a member of the team's channel nor an admin (audited).
    """
    note = _valid_note(note)
    now = now or clock.now()
    ticket = _authorized_and_locked(session, ticket_id, user_id, settings, may_act, Work.RESOLVE, now)
    _refuse_resolved(ticket)
    team = team_of(ticket, settings)

    def resolve() -> None:
        ticket.status = TicketStatus.RESOLVED
        ticket.resolved_at = now
        ticket.awaiting_response_from = Awaiting.NOBODY
        ticket.assigned_to = user_id

    # The note is the action's reasoning: /history shows why the ticket was closed.
    action = _record(session, ticket, user_id, ActionType.RESOLVE, now, apply=resolve, reasoning=note,
                     params={"team": team, "resolved_by": user_id})
    session.flush()
    due = now + settings.followup_delay
    resolution = PersonResolution(
        ticket_id=ticket.ticket_id, action_id=action.id, resolved_by=user_id, team=team, note=note,
        user_feedback_text="", followup_due_at=due, reopened=False,
        reopened_reason="", created_at=now, updated_at=now,
    )
    session.add(resolution)
    session.flush()
    followups.schedule(session, resolution, ticket, due=due, now=now)
    return ResolveResult(ticket, team, action, resolution)


def _valid_note(note: object) -> str:
    if not isinstance(note, str) or not note.strip():
        raise InvalidInput("Write what you did: the requester reads this note.")
    note = note.strip()
    if len(note) > NOTE_LIMIT:
        raise InvalidInput(f"The note is {len(note)} characters long; keep it to {NOTE_LIMIT}.")
    return note


def _authorized_and_locked(
    session: Session, ticket_id: int, user_id: str, settings: Settings, may_act: MayAct, work: Work,
    now: datetime,
) -> Ticket:
    """The ticket, locked, once this person may work on it.

    Slack is asked before the lock is taken (a lookup can take a second); if the ticket
    moved to another team meanwhile, the new team's channel is asked too.
    """
    ticket = tickets.clicked_ticket(session, ticket_id, user_id, lock=False)
    asked = _authorize(session, ticket, user_id, settings, may_act, work, now)
    ticket = tickets.clicked_ticket(session, ticket_id, user_id, lock=True)
    if channel_of(ticket, settings) != asked:
        _authorize(session, ticket, user_id, settings, may_act, work, now)
    return ticket


def _authorize(
    session: Session, ticket: Ticket, user_id: str, settings: Settings, may_act: MayAct, work: Work,
    now: datetime,
) -> str | None:
    """Refuse (audited) anyone who is neither in the team's channel nor an admin;
    returns the channel asked about."""
    team = team_of(ticket, settings)
    channel = channel_of(ticket, settings)
    try:
        allowed = may_act(channel) is True
    except Exception:  # a lookup that fails must not hand out the ticket
        allowed = False
    if allowed:
        return channel
    audit.record(session, audit.TEAM_ACTION_DENIED, actor_id=user_id, ticket_id=ticket.ticket_id,
                 detail={"work": work, "team": team, "channel": channel}, now=now)
    if channel is None:
        raise NotAuthorized(
            f"No channel is set for {team} (TEAM_CHANNELS or ESCALATION_CHANNEL), so only "
            f"helpdesk admins can {work} ticket #{ticket.ticket_id}."
        )
    raise NotAuthorized(
        f"Only members of {team}'s channel and helpdesk admins can {work} ticket #{ticket.ticket_id}."
    )


def _refuse_resolved(ticket: Ticket) -> None:
    if ticket.status == TicketStatus.RESOLVED:
        raise InvalidInput(f"Ticket #{ticket.ticket_id} is resolved already.")
    if ticket.status == TicketStatus.CLOSED:
        raise InvalidInput(f"Ticket #{ticket.ticket_id} was withdrawn by the person who asked.")


def _record(
    session: Session, ticket: Ticket, user_id: str, action_type: ActionType, now: datetime, *,
    apply: Callable[[], None], params: dict, reasoning: str,
) -> ActionHistory:
    # Recorded like the bot's actions, with what it takes to undo it.
    before = snapshots.snapshot(ticket)
    apply()
    ticket.updated_at = now
    row = ActionHistory(
        ticket_id=ticket.ticket_id, action_type=action_type, action_params=params, executed_at=now,
        executed_by=user_id, autonomous=False, confidence_score=None, agent_reasoning=reasoning,
        rollback_possible=True, before_state=before, after_state=snapshots.snapshot(ticket),
    )
    session.add(row)
    return row
