"""What happens after a listener has acknowledged: decisions and Slack messages.

Each function owns its transactions (like a job) and talks to Slack through one
`WebClient` whose calls never raise for permanent errors (`safe_call`). They run on the
background executor or in Celery tasks (bot.workflows.dispatch, bot.workflows.redraws).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from slack_sdk import WebClient

from bot import views
from bot.core import clock, observability
from bot.delivery import followup_batches, outbox
from bot.delivery.slack_client import respond, safe_call
from bot.domain import conversation, processing, teamwork, tickets, triage_causes
from bot.domain.feedback import FeedbackResult
from bot.domain.processing import Outcome
from bot.domain.rollback import RollbackResult
from bot.views import NoticeKind
from bot.workflows import teamwork as team_notices
from bot.workflows.decision import decide_ticket
from bot.workflows.runtime import Runtime
from models import ActionType, PersonResolution, SlackOutbox, TicketSource, transaction

log = logging.getLogger(__name__)

# How many more decisions one decision may run for what was added while it ran: each
# is one more round of the requester writing during a decision, so more is a loop.
CATCH_UP_LIMIT = 3


def decide_and_announce(runtime: Runtime, client: WebClient, ticket_id: int, *,
                        statuses: Collection[str] = processing.NEW_ONLY) -> Outcome:
    """Decide on a new ticket, then tell the requester (and the team's channel).

    `statuses`: what the ticket may be decided from. The act and the posts it owes are
    one transaction (the outbox): if Slack is down, or this process dies right after the
    commit, the retry job delivers them. No transaction is open while the agent answers
    (bot.workflows.decision). Detail the requester added while it ran is decided on
    right after (`_catch_up`).
    """
    outcome = _decide_and_announce(runtime, client, ticket_id, statuses=statuses)
    return _catch_up(runtime, client, ticket_id, outcome)


def redecide_and_announce(runtime: Runtime, client: WebClient, ticket_id: int) -> Outcome:
    """Decide again on a ticket its requester replied to (bot.domain.conversation), on the
    whole conversation, then tell them and the team as for a new ticket.

    Claimed only while the ticket awaits its requester and a reply waits for a decision:
    a second delivery of the same reply, or a second worker, finds nothing to decide.
    A reply that came while this decision ran (its own attempt found the ticket claimed)
    is decided right after, not left for the sweep.
    """
    outcome = _decide_and_announce(runtime, client, ticket_id, statuses=conversation.AWAITING,
                                   when=conversation.redecidable())
    return _catch_up(runtime, client, ticket_id, outcome)


def redecide_waiting(runtime: Runtime, client: WebClient, ticket_id: int) -> Outcome:
    """Decide again on a ticket its requester added to (detail from App Home; or, for the
    sweep, anything left waiting), on the whole conversation, then tell them as for a new
    ticket and redraw the team's notices.

    Claimed only while nobody has the ticket and something the requester added waits for
    a decision: a second delivery finds nothing to decide. If another decision was
    running (this attempt found the ticket claimed), that one decides again right after
    on the new text (`_catch_up`).
    """
    outcome = _decide_and_announce(runtime, client, ticket_id, statuses=conversation.OPEN_STATUSES,
                                   when=conversation.waits_for_bot())
    outcome = _catch_up(runtime, client, ticket_id, outcome)
    team_notices.refresh_team_notices(runtime, client, ticket_id)
    return outcome


def _catch_up(runtime: Runtime, client: WebClient, ticket_id: int, outcome: Outcome) -> Outcome:
    """After a decision: decide again while the requester added something it did not read
    (a reply, detail from App Home) and nobody has the ticket.

    What was added during a decision waits (the act marks only what its claim read), and
    its own decision found the ticket claimed: the decision that held the claim is the one
    that looks again, so nothing waits for the sweep. Returns the latest outcome.
    """
    for _ in range(CATCH_UP_LIMIT):
        if outcome.already_processed or not _anything_waits(runtime, ticket_id):
            break
        again = _decide_and_announce(runtime, client, ticket_id, statuses=conversation.OPEN_STATUSES,
                                     when=conversation.waits_for_bot())
        if again.already_processed:
            break
        outcome = again
    return outcome


def _anything_waits(runtime: Runtime, ticket_id: int) -> bool:
    # Nearly always nothing was added during the decision: a read says so for a fraction
    # of what a claim that finds nothing costs (it is every decision's last step).
    with transaction(runtime.sessions) as session:
        return conversation.anything_waits(session, ticket_id)


def time_out_and_announce(runtime: Runtime, client: WebClient, ticket_id: int) -> Outcome:
    """Send a ticket whose requester did not answer within CLARIFICATION_TIMEOUT to human
    triage (the team's channel gets the conversation), and tell the requester.

    Claimed only while it still awaits them with no reply: one arriving meanwhile is
    decided on instead.
    """
    settings = runtime.settings
    outcome = _decide_and_announce(
        runtime, client, ticket_id, statuses=conversation.AWAITING,
        when=conversation.unanswered(clock.now(), settings.clarification_timeout),
        decide=lambda claim: processing.timed_out(claim, settings))
    return _catch_up(runtime, client, ticket_id, outcome)


def _decide_and_announce(runtime: Runtime, client: WebClient, ticket_id: int, **claim: Any) -> Outcome:
    settings = runtime.settings
    decided = decide_ticket(
        runtime.sessions, ticket_id, agent=runtime.agent, budget=runtime.budget, settings=settings,
        owe=lambda session, outcome: outbox.claims_of(_enqueue_outcome(session, outcome, settings)),
        **claim,
    )
    outcome = decided.outcome
    if not outcome.already_processed and outcome.action is not None:
        cause = triage_causes.cause_of(outcome)
        observability.track_action(
            outcome.action.action_type, autonomous=outcome.action.autonomous,
            success=outcome.triage_reason is None, confidence=outcome.action.confidence_score,
            triage=cause, deliberate=cause is not None and cause.deliberate,
            ticket_id=outcome.ticket.ticket_id,
        )
    outbox.send_claimed(runtime.sessions, client, decided.owed, ttl=settings.claim_ttl)
    return outcome


def _enqueue_outcome(session, outcome: Outcome, settings) -> list[SlackOutbox]:
    # Written already claimed: sent right after the decision's commit with no claim
    # transaction of their own (the path every new ticket takes).
    ticket, action = outcome.ticket, outcome.action
    if action is None or ticket.source == TicketSource.CLI:
        return []
    if action.action_type == ActionType.AUTO_RESOLVE:
        text, blocks = views.resolution_message(ticket, action, ticket_text=ticket.description)
    else:
        text, blocks = views.action_thread_message(ticket, action)
    # Where it was asked (a helpdesk channel, a mention's thread, a DM), or for a private
    # /ticket the requester's DM, which then becomes the ticket's conversation.
    owed = [outbox.enqueue(
        session, purpose=outbox.TICKET_OUTCOME, text=text, blocks=blocks,
        ticket_id=ticket.ticket_id, claim_ttl=settings.claim_ttl, **outbox.to_requester(ticket),
    )]
    # Routing, escalation and triage: the team sees the request and can take it.
    kind = team_notices.notice_kind(action)
    if kind is not None:
        notice = team_notices.enqueue_team_notice(
            session, ticket, settings, kind=kind, action=action,
            reason=(action.action_params or {}).get("reason", ""), claim_ttl=settings.claim_ttl)
        if notice is not None:
            owed.append(notice)
    return owed


def enqueue_reopen_notices(session, result: FeedbackResult, settings, *, channel: str,
                           message_ts: str) -> list[int]:
    """The posts a "No" owes: a word in the thread, and the notice in the team's channel.

    Written in the caller's transaction, with the answer itself.
    """
    if not result.reopened:
        return []
    ticket = result.ticket
    team = teamwork.team_of(ticket, settings)
    # The answer may come from the follow-up DM: reply where it was clicked.
    thread = ticket.slack_thread_ts if channel == ticket.slack_channel_id else message_ts
    owed = [outbox.enqueue(
        session, purpose=outbox.NOTICE, channel=channel, thread_ts=thread or message_ts,
        ticket_id=ticket.ticket_id,
        text=f"Sorry that did not help. I've reopened ticket #{ticket.ticket_id} for {team}; "
        "a person will follow up.",
    ).id]
    # The notice shows what did not work: the bot's steps, or the person's note.
    action_id = result.resolution.action_id
    answered = tickets.action_by_id(session, action_id) if action_id else None
    resolution = result.resolution
    notice = team_notices.enqueue_team_notice(
        session, ticket, settings, kind=NoticeKind.REOPENED, action=answered,
        # Said after an earlier No about the same answer: still what did not work.
        reason=resolution.user_feedback_text or "",
        person_resolution_id=resolution.id if result.by_person else None)
    return owed + [notice.id] if notice else owed


def open_reason_modal(client: WebClient, *, trigger_id: str, result: FeedbackResult) -> bool:
    """Open the optional "What didn't work?" modal for a No (the trigger is valid 3 s
    from the click: call this first). The No is recorded already, so a modal that
    does not open, or is never submitted, loses nothing.

    Returns:
        Whether it opened.
    """
    resolution = result.resolution
    view = views.feedback_reason_modal(
        result.ticket.ticket_id, person_resolution_id=resolution.id if result.by_person else None,
        text=resolution.user_feedback_text or "")
    opened = safe_call(client, "views.open", trigger_id=trigger_id, view=view)
    return opened is not None


def redraw_answer(
    runtime: Runtime, client: WebClient, *, ticket_id: int, person_resolution_id: int | None,
    channel: str, message_ts: str, owed: Sequence[int] = (), ticket_moved: bool = False,
) -> None:
    """Show the requester's answer on the message they clicked, and send what is owed.

    Plain values only (a Celery task calls it: bot.workflows.redraws). The message is
    drawn from the state at send time, one update per message at a time (in this
    process and, with Redis, across processes): clicks answered out of order still
    leave the message showing the last answer, and running it twice draws the same.
    `owed` rows are sent once whoever runs this (their claims); `ticket_moved`: the
    answer reopened or resolved the ticket again, so its team notices are redrawn.
    """
    with runtime.message_locks.hold((channel, message_ts)):
        with transaction(runtime.sessions) as session:
            # A follow-up DM may carry several resolutions (SURVEY_COOLDOWN): all of it
            # is redrawn, each as it stands.
            text, blocks = (followup_batches.redraw(session, channel=channel, ts=message_ts,
                                                    now=clock.now())
                            or _answered(session, ticket_id, person_resolution_id))
        safe_call(client, "chat.update", channel=channel, ts=message_ts, text=text, blocks=blocks)
    outbox.deliver(runtime.sessions, client, list(owed), ttl=runtime.settings.claim_ttl)
    if ticket_moved:
        # Reopened or resolved again: the team's notices show it.
        team_notices.refresh_team_notices(runtime, client, ticket_id)


def announce_nps(runtime: Runtime, client: WebClient, *, channel: str, message_ts: str) -> None:
    """Show the person's NPS answer on the follow-up DM they clicked (drawn at send
    time, one update per message at a time, as for Yes/No)."""
    with runtime.message_locks.hold((channel, message_ts)):
        with transaction(runtime.sessions) as session:
            drawn = followup_batches.redraw(session, channel=channel, ts=message_ts, now=clock.now())
        if drawn is not None:
            safe_call(client, "chat.update", channel=channel, ts=message_ts, text=drawn[0], blocks=drawn[1])


def _answered(session, ticket_id: int, person_resolution_id: int | None) -> tuple[str, list]:
    """The clicked message as it stands now: the bot's answer or a person's resolution."""
    if person_resolution_id is not None:
        ticket = tickets.get_ticket(session, ticket_id)
        person = session.get_one(PersonResolution, person_resolution_id)
        action = tickets.action_by_id(session, person.action_id) if person.action_id else None
        withdrawn = action is not None and action.rolled_back
        return views.answered_person_resolution_message(ticket, person, withdrawn=withdrawn)
    # The bot's answer, the busiest redraw (every requester's click): one read, not three.
    ticket, bots, action = tickets.answered_by_bot(session, ticket_id)
    return views.answered_resolution_message(ticket, action, bots)


def enqueue_rollback_notice(session, result: RollbackResult, settings) -> list[int]:
    """The notices a rollback owes, in the rollback's transaction: the ticket's thread,
    and the team's channel (the bot will not act on this ticket again, so a person
    must pick it up)."""
    ticket = result.ticket
    text, blocks = views.rollback_thread_notice(result)
    owed = []
    if ticket.slack_channel_id or ticket.source != TicketSource.CLI:
        owed.append(outbox.enqueue(session, purpose=outbox.NOTICE, text=text, blocks=blocks,
                                   ticket_id=ticket.ticket_id, **outbox.to_requester(ticket)).id)
    notice = team_notices.enqueue_team_notice(session, ticket, settings, kind=NoticeKind.ROLLED_BACK,
                                              action=result.action, reason=result.action.rollback_reason)
    return owed + [notice.id] if notice else owed


def announce_rollback(runtime: Runtime, client: WebClient, result: RollbackResult, *,
                      admin_channel: str | None, admin_id: str, owed: Sequence[int] = (),
                      response_url: str | None = None) -> None:
    """Tell the admin it is done, in place of the confirm step they clicked (so it
    cannot be clicked twice), and send the thread notice."""
    text, blocks = views.rollback_done(result)
    reply(client, response_url=response_url, channel=admin_channel, user=admin_id, text=text,
          blocks=blocks, replace=True)
    outbox.deliver(runtime.sessions, client, list(owed), ttl=runtime.settings.claim_ttl)


def reply(client: WebClient, *, response_url: str | None, channel: str | None, user: str, text: str,
          blocks: list | None = None, replace: bool = False) -> None:
    """Answer whoever clicked, where they will see it even if the bot is not in the
    channel: through the click's response URL (replacing the clicked ephemeral message
    with `replace`); without one, or if Slack refuses it, an ephemeral message in the
    channel; if that is refused too (the bot is not there), a DM.

    Args:
        client: the Web API client.
        response_url: the click's response URL, if it had one.
        channel: where they clicked.
        user: who clicked.
        text: the answer's text (also the blocks' fallback).
        blocks: its blocks; None for the text as an error message.
        replace: replace the clicked message (a confirm step that is now answered).
    """
    blocks = blocks if blocks is not None else views.error_message(text)
    if response_url and respond(response_url, text=text, blocks=blocks or None, replace_original=replace):
        return
    if channel and safe_call(client, "chat.postEphemeral", channel=channel, user=user, text=text,
                             blocks=blocks) is not None:
        return
    if user:
        safe_call(client, "chat.postMessage", channel=user, text=text, blocks=blocks)


def tell(client: WebClient, *, channel: str, user: str, text: str, blocks: list | None = None) -> None:
    """An ephemeral message only `user` sees (a refusal, an error, a "Why?")."""
    safe_call(client, "chat.postEphemeral", channel=channel, user=user, text=text,
              blocks=blocks if blocks is not None else views.error_message(text))
