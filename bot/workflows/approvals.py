"""Two-person rollback in Slack: the request's message in the approvals channel, what
each decision owes, and the periodic pass that expires requests.

`enqueue_*` functions write outbox rows in the caller's transaction (the request or
the decision they announce); the others run after a listener's acknowledgement (or
in the periodic job) and own their transactions, like the rest of bot.workflows.

The approvals message is redrawn with the outcome (approved, rejected, expired). Each
request remembers the status its message shows (`shown_status`); a redraw that fails
(Slack down) is done again by the next periodic pass, so the message never keeps
offering Approve on a request that was decided.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from slack_sdk import WebClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from bot import views
from bot.core import clock
from bot.core.settings import Settings
from bot.delivery import outbox
from bot.delivery.slack_client import safe_call
from bot.domain import approvals
from bot.domain.approvals import Decision
from bot.workflows import announce
from bot.workflows.runtime import Runtime
from models import (
    ActionHistory,
    OutboxStatus,
    RollbackRequest,
    SlackOutbox,
    as_utc,
    transaction,
)

log = logging.getLogger(__name__)

MODAL_FAILED = "I couldn't open the reject form. Please click Reject again."


def enqueue_request(session: Session, request: RollbackRequest, settings: Settings) -> list[int]:
    """Post the new request to APPROVALS_CHANNEL (else ALERTS_CHANNEL), with Approve and
    Reject, in the request's transaction.

    Returns:
        The outbox row ids to deliver after the commit.
    """
    channel = settings.approval_requests_channel
    if channel is None:  # refused at startup in two-person mode; a request made without it waits
        log.warning("rollback request #%s: no APPROVALS_CHANNEL or ALERTS_CHANNEL to post it to",
                    request.id)
        return []
    text, blocks = views.rollback_request_message(request, session.get(ActionHistory, request.action_id))
    row = outbox.enqueue(session, purpose=outbox.NOTICE, channel=channel, text=text, blocks=blocks,
                         ticket_id=request.ticket_id)
    request.outbox_id = row.id
    session.flush()
    return [row.id]


def enqueue_decision(session: Session, decision: Decision, settings: Settings) -> list[int]:
    """What a decision owes, in its transaction: the admin who asked hears of it (DM);
    an approval also owes the rollback's notices (the ticket's thread, the team)."""
    owed = [_to_requester(session, decision.request)]
    if decision.result is not None:
        owed += announce.enqueue_rollback_notice(session, decision.result, settings)
    return owed


def announce_request(runtime: Runtime, client: WebClient, request_id: int, owed: Sequence[int], *,
                     channel: str | None, user: str, response_url: str | None = None) -> None:
    """After a request's commit: post it to the approvals channel, and tell the admin
    who asked where it waits, in place of the confirm step they clicked."""
    outbox.deliver(runtime.sessions, client, list(owed), ttl=runtime.settings.claim_ttl)
    with transaction(runtime.sessions) as session:
        request = session.get(RollbackRequest, request_id)
        text, blocks = views.request_sent(request, runtime.settings.approval_requests_channel or "")
    announce.reply(client, response_url=response_url, channel=channel, user=user, text=text,
                   blocks=blocks, replace=True)


def announce_decision(runtime: Runtime, client: WebClient, decision: Decision, owed: Sequence[int], *,
                      channel: str | None, user: str) -> None:
    """After a decision's commit: send what it owes, redraw the approvals message, and
    tell whoever clicked (the approver: the rollback; anyone: an expiry)."""
    outbox.deliver(runtime.sessions, client, list(owed), ttl=runtime.settings.claim_ttl)
    redraw(runtime, client, decision.request.id)
    if not channel:
        return
    if decision.result is not None:
        text, blocks = views.rollback_done(decision.result)
    elif decision.expired:
        text = approvals.closed_text(decision.request)
        blocks = views.error_message(text)
    else:
        return
    safe_call(client, "chat.postEphemeral", channel=channel, user=user, text=text, blocks=blocks)


def open_reject_modal(client: WebClient, *, trigger_id: str, request: RollbackRequest,
                      channel: str | None, user: str) -> bool:
    """Open the reject modal for the click's trigger (valid 3 s: call this first).

    Returns:
        Whether it opened; if not, the clicker is told to click again.
    """
    opened = safe_call(client, "views.open", trigger_id=trigger_id, view=views.reject_modal(request))
    if opened is None and channel:
        safe_call(client, "chat.postEphemeral", channel=channel, user=user, text=MODAL_FAILED,
                  blocks=views.error_message(MODAL_FAILED))
    return opened is not None


def redraw(runtime: Runtime, client: WebClient, request_id: int, *, now: datetime | None = None) -> bool:
    """Make the request's approvals message show its status now.

    A message already posted is updated (under its message lock, drawn inside it); one
    not posted yet is rewritten in the outbox, so it goes out showing the outcome.

    Returns:
        Whether the message shows the status now (False: try again later).
    """
    now = now or clock.now()
    with transaction(runtime.sessions) as session:
        request = session.get(RollbackRequest, request_id)
        if request is None:
            return True
        post = session.get(SlackOutbox, request.outbox_id) if request.outbox_id else None
        if post is None or post.status in (OutboxStatus.FAILED, OutboxStatus.CANCELLED):
            request.shown_status = request.status  # no message to redraw
            return True
        if post.status != OutboxStatus.SENT:
            if post.claimed_until is not None and as_utc(post.claimed_until) > now:
                return False  # being posted right now; the next pass redraws it
            post.text, post.blocks = _drawn(session, request)
            request.shown_status = request.status
            return True
        if not post.sent_channel or not post.message_ts:
            return False
        where = (post.sent_channel, post.message_ts)
    with runtime.message_locks.hold(where):
        with transaction(runtime.sessions) as session:
            request = session.get(RollbackRequest, request_id)
            if request is None:
                return True
            status = request.status
            text, blocks = _drawn(session, request)
        updated = safe_call(client, "chat.update", channel=where[0], ts=where[1], text=text, blocks=blocks)
    if updated is None:
        log.warning("rollback request #%s: its message could not be redrawn; the next pass retries",
                    request_id)
        return False
    with transaction(runtime.sessions) as session:
        session.execute(update(RollbackRequest).where(RollbackRequest.id == request_id)
                        .values(shown_status=status))
    return True


def expire_requests(runtime: Runtime, client: WebClient) -> int:
    """The periodic pass: expire requests nobody decided in time (each asker told by DM),
    then redraw every approvals message that lags its request's status.

    Returns:
        How many requests expired in this pass.
    """
    with transaction(runtime.sessions) as session:
        expired = approvals.expire_due(session, now=clock.now())
        owed = [_to_requester(session, request) for request in expired]
        lagging = approvals.lagging_messages(session)
    outbox.deliver(runtime.sessions, client, owed, ttl=runtime.settings.claim_ttl)
    for request_id in lagging:
        redraw(runtime, client, request_id)
    return len(expired)


def _drawn(session: Session, request: RollbackRequest) -> tuple[str, list]:
    return views.rollback_request_message(request, session.get(ActionHistory, request.action_id))


def _to_requester(session: Session, request: RollbackRequest) -> int:
    # A DM: the admin may have asked in a channel the bot is not in.
    text, blocks = views.request_outcome_dm(request)
    return outbox.enqueue(session, purpose=outbox.NOTICE, channel=request.requested_by, text=text,
                          blocks=blocks, ticket_id=request.ticket_id).id

