"""The team's side in Slack: notices in the team's channel, and what people's work there
owes the requester.

`enqueue_*` functions write outbox rows in the caller's transaction (with the change
they announce); the others run after a listener's acknowledgement and own their
transactions, like the rest of bot.workflows.

Every notice about a ticket goes to `teamwork.channel_of(ticket)`: the ticket's team's
channel (TEAM_CHANNELS), else ESCALATION_CHANNEL. Posted notices are found again
through their outbox rows, so after a take, a resolve or a reopen each one is redrawn
(under its message lock, from the state at send time) to show who has the ticket now.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import views
from bot.core.settings import Settings
from bot.delivery import outbox
from bot.delivery.slack_client import safe_call
from bot.domain import conversation, teamwork
from bot.domain.feedback import FeedbackResult
from bot.domain.teamwork import ResolveResult, TakeResult
from bot.views import NoticeKind, NoticeState
from bot.views.escape import mention
from bot.workflows.runtime import Runtime
from models import (
    ActionHistory,
    ActionType,
    OutboxPurpose,
    OutboxStatus,
    PersonResolution,
    SlackOutbox,
    Ticket,
    TicketSource,
    TicketStatus,
    transaction,
)

log = logging.getLogger(__name__)

MODAL_FAILED = "I couldn't open the resolve form. Please click Resolve again."


def notice_kind(action: ActionHistory) -> NoticeKind | None:
    """Which team notice a decision owes (None: the requester alone is told)."""
    if action.action_type == ActionType.ESCALATE:
        return NoticeKind.TRIAGE if (action.action_params or {}).get("triage") else NoticeKind.ESCALATED
    if action.action_type == ActionType.ASSIGN_TO_TEAM:
        return NoticeKind.ROUTED
    return None


def enqueue_team_notice(
    session: Session, ticket: Ticket, settings: Settings, *, kind: NoticeKind,
    action: ActionHistory | None, reason: str = "", claim_ttl: timedelta | None = None,
    person_resolution_id: int | None = None,
) -> SlackOutbox | None:
    """Post a notice to the ticket's team's channel (in the caller's transaction).

    Args:
        session: the transaction of what the notice announces.
        ticket: the ticket, as the change left it.
        settings: TEAM_CHANNELS, ESCALATION_CHANNEL, DEFAULT_TEAM.
        kind: why it is posted.
        action: the action behind it (see `views.team_notice`).
        reason: why a person is needed, or the admin's reason.
        claim_ttl: write the row claimed by the caller (see `outbox.enqueue`).
        person_resolution_id: REOPENED: the person's resolution the No was about.

    Returns:
        The outbox row, or None when the team has no channel (and there is no
        ESCALATION_CHANNEL): then nobody is told, as before TEAM_CHANNELS existed.
    """
    channel = teamwork.channel_of(ticket, settings)
    if channel is None:
        log.info("ticket %s: no channel for team %r; no team notice", ticket.ticket_id,
                 teamwork.team_of(ticket, settings))
        return None
    replies = [message.text for message in conversation.replies(session, ticket.ticket_id)]
    text, blocks = views.team_notice(ticket, kind=kind, team=teamwork.team_of(ticket, settings),
                                     action=action, reason=reason, state=notice_state(session, ticket),
                                     person_resolution_id=person_resolution_id, replies=replies)
    return outbox.enqueue(session, purpose=outbox.NOTICE, channel=channel, text=text, blocks=blocks,
                          ticket_id=ticket.ticket_id, claim_ttl=claim_ttl)


def add_requester_said(session: Session, result: FeedbackResult) -> int:
    """Put the requester's words about what did not work on the reopen notices of their
    No (in the caller's transaction); returns how many.

    The notices' stored blocks are rewritten: one not sent yet goes out with the words,
    and one posted already shows them when `refresh_team_notices` redraws it.
    """
    resolution = result.resolution
    person = resolution.id if result.by_person else None
    rows = session.scalars(
        select(SlackOutbox)
        .where(SlackOutbox.ticket_id == result.ticket.ticket_id,
               SlackOutbox.purpose == OutboxPurpose.NOTICE)
        .order_by(SlackOutbox.id)
    ).all()
    found = [row for row in rows if views.is_reopen_notice_of(row.blocks, result.ticket.ticket_id, person)]
    for row in found:
        row.blocks = views.with_requester_said(row.blocks or [], resolution.user_feedback_text)
    session.flush()
    return len(found)


def enqueue_taken(session: Session, result: TakeResult) -> list[int]:
    """What a take owes: the requester hears who is on their ticket."""
    if not result.changed:
        return []
    ticket = result.ticket
    text, blocks = views.taken_notice(ticket, holder=ticket.assigned_to or "", team=result.team)
    row = _to_requester(session, ticket, text, blocks)
    return [row.id] if row is not None else []


def enqueue_resolution(session: Session, result: ResolveResult) -> list[int]:
    """What a person's resolution owes now: the requester gets the note with Yes/No and
    the stars (the follow-up DM was written by the resolve itself)."""
    text, blocks = views.person_resolution_message(result.ticket, result.resolution)
    row = _to_requester(session, result.ticket, text, blocks)
    return [row.id] if row is not None else []


def _to_requester(session: Session, ticket: Ticket, text: str, blocks: list) -> SlackOutbox | None:
    # Where the bot's answer went (its thread; the DM when that was refused), as
    # every post to the requester after the first.
    if ticket.source == TicketSource.CLI and not ticket.slack_channel_id:
        return None
    to = outbox.to_requester(ticket)
    if "channel" in to:
        to["fallback_user"] = ticket.user_id
    return outbox.enqueue(session, purpose=outbox.NOTICE, text=text, blocks=blocks,
                          ticket_id=ticket.ticket_id, **to)


def notice_state(session: Session, ticket: Ticket) -> NoticeState:
    """Where the ticket stands, for the end of its notices."""
    if ticket.status == TicketStatus.CLOSED:
        return NoticeState(holder=ticket.assigned_to, withdrawn=True)
    if ticket.status != TicketStatus.RESOLVED:
        return NoticeState(holder=ticket.assigned_to)
    # Resolved by a person: the latest of their resolutions still standing says who.
    latest = session.execute(
        select(PersonResolution.resolved_by, PersonResolution.note)
        .join(ActionHistory, ActionHistory.id == PersonResolution.action_id)
        .where(PersonResolution.ticket_id == ticket.ticket_id, ActionHistory.rolled_back.is_(False))
        .order_by(PersonResolution.id.desc()).limit(1)
    ).first()
    if latest is None:
        return NoticeState(holder=ticket.assigned_to, resolved=True)
    return NoticeState(holder=ticket.assigned_to, resolved=True, resolved_by=latest.resolved_by,
                       note=latest.note)


def team_notices_of(session: Session, ticket_id: int) -> list[tuple[str, str, list]]:
    """The team notices posted about a ticket: (channel, ts, blocks as posted)."""
    rows = session.execute(
        select(SlackOutbox.sent_channel, SlackOutbox.message_ts, SlackOutbox.blocks)
        .where(SlackOutbox.ticket_id == ticket_id, SlackOutbox.purpose == OutboxPurpose.NOTICE,
               SlackOutbox.status == OutboxStatus.SENT, SlackOutbox.message_ts.is_not(None))
        .order_by(SlackOutbox.id)
    ).all()
    return [(row.sent_channel, row.message_ts, row.blocks) for row in rows
            if row.sent_channel and views.is_team_notice(row.blocks)]


def announce_team_work(runtime: Runtime, client: WebClient, ticket_id: int, owed: Sequence[int] = ()) -> None:
    """After a take, a resolve or a reopen: send what it owes, then redraw the ticket's
    team notices to show where it stands."""
    outbox.deliver(runtime.sessions, client, list(owed), ttl=runtime.settings.claim_ttl)
    refresh_team_notices(runtime, client, ticket_id)


def refresh_team_notices(runtime: Runtime, client: WebClient, ticket_id: int) -> int:
    """Redraw every team notice of the ticket from its state now; returns how many.

    One update per message at a time (across processes with Redis), each drawn inside
    its lock: two clicks answered out of order still leave the last state shown.
    """
    with transaction(runtime.sessions) as session:
        notices = team_notices_of(session, ticket_id)
    for channel, ts, posted in notices:
        with runtime.message_locks.hold((channel, ts)):
            with transaction(runtime.sessions) as session:
                ticket = session.get(Ticket, ticket_id)
                if ticket is None:
                    return 0
                state = notice_state(session, ticket)
            blocks = views.redraw_team_notice(posted, ticket_id=ticket_id, state=state)
            safe_call(client, "chat.update", channel=channel, ts=ts, blocks=blocks,
                      text=_state_text(ticket_id, state))
    return len(notices)


def open_resolve_modal(client: WebClient, *, trigger_id: str, ticket: Ticket, channel: str | None,
                       user: str) -> bool:
    """Open the resolve modal for the click's trigger (valid 3 s: call this first).

    Returns:
        Whether it opened; if not, the clicker is told to click again.
    """
    opened = safe_call(client, "views.open", trigger_id=trigger_id, view=views.resolve_modal(ticket))
    if opened is None and channel:
        safe_call(client, "chat.postEphemeral", channel=channel, user=user, text=MODAL_FAILED,
                  blocks=views.error_message(MODAL_FAILED))
    return opened is not None


def _state_text(ticket_id: int, state: NoticeState) -> str:
    if state.withdrawn:
        return f"Ticket #{ticket_id} was withdrawn by the person who asked."
    if state.resolved:
        return f"Ticket #{ticket_id} is resolved."
    if state.holder:
        return f"Ticket #{ticket_id}: {mention(state.holder)} has it."
    return f"Ticket #{ticket_id} needs a person."
