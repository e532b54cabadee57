"""Tickets from a DM to the bot or an @-mention in a channel, and the requester's replies
in the thread of the bot's question (bot.domain.conversation).

The ticket is stored in the request's transaction with Slack's event_id, so a retried
delivery (X-Slack-Retry-Num) opens no second one; the acknowledgement (an empty 200 is
all Slack wants) commits it, then the decision runs off the request path (or, when the
decision executor is full, the sweep decides on it and the sender is told it may take a
few minutes). A refusal or an outage is raised and told to the sender by `handlers.errors`.
"""

from __future__ import annotations

import re

from slack_bolt import Ack
from sqlalchemy.orm import Session

from bot.domain import conversation, intake
from bot.views.escape import from_slack_text
from bot.workflows import deferred, dispatch
from bot.workflows.dispatch import DecisionKind
from handlers.deps import SlackDeps
from handlers.routing import Routes
from models import TicketSource

_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")
# A reply may also be sent to the channel, or carry a file with its text.
_REPLY_SUBTYPES = frozenset({"thread_broadcast", "file_share"})


def message(ack: Ack, body: dict, event: dict, session: Session, deps: SlackDeps) -> None:
    # Bolt's event matcher ignores channel_type: every message event arrives here (DMs,
    # and with message.channels/.groups every message in the bot's channels). What is
    # not a person's new DM, or their reply in the thread of a ticket awaiting them, is
    # dropped: anything else in a thread is looked up (a read), nothing is written.
    thread_ts = event.get("thread_ts")
    subtype = event.get("subtype")
    if event.get("bot_id") or (subtype and not (thread_ts and subtype in _REPLY_SUBTYPES)):
        ack()
        return
    if thread_ts:
        if not _reply(ack, session, deps, body, event):
            ack()
        return
    if event.get("channel_type") != "im":
        ack()
        return
    # Text of the wrong type reads as empty, which intake refuses.
    _open(ack, session, deps, body, event, source=TicketSource.DM, text=_typed(event, cut_mention=False))


def mention(ack: Ack, body: dict, event: dict, session: Session, deps: SlackDeps) -> None:
    if event.get("bot_id"):
        ack()
        return
    # In the thread of a ticket awaiting this person, a mention is their reply (the
    # message event of the same message adds it once: whichever comes first).
    if event.get("thread_ts") and _reply(ack, session, deps, body, event):
        return
    _open(ack, session, deps, body, event, source=TicketSource.MENTION, text=_typed(event, cut_mention=True))


def _reply(ack: Ack, session: Session, deps: SlackDeps, body: dict, event: dict) -> bool:
    """Add the message to the ticket awaiting its author in this thread and decide again;
    False (nothing written, not acknowledged) when it is not such a reply."""
    reply = conversation.add_reply(
        session, channel=event.get("channel"), thread_ts=event.get("thread_ts"), ts=event.get("ts"),
        user_id=event.get("user"), text=_typed(event, cut_mention=True), event_id=body.get("event_id"),
    )
    if reply is None:
        return False
    if not reply.created:
        ack()
        return True
    # Through the dispatch seam, like a new ticket: a worker with DECIDE_ON=workers.
    with dispatch.decision_slot(deps.runtime) as slot:
        if slot is None:
            # Stored all the same: the sweep decides on it; the person hears why it waits.
            deferred.enqueue_reply_saved_while_busy(session, ticket_id=reply.ticket_id,
                                                    channel=event["channel"],
                                                    thread_ts=event["thread_ts"])
        ack()
        if slot is not None:
            slot.dispatch(reply.ticket_id, DecisionKind.REPLY)
    return True


def _typed(event: dict, *, cut_mention: bool) -> str:
    """The message as its author typed it: Slack's escaping undone, the leading mention
    of the bot cut (when `cut_mention`) before it is stored; text of the wrong type is
    empty."""
    raw = event.get("text")
    text = raw if isinstance(raw, str) else ""
    if cut_mention:
        # Cut on Slack's text, where only a real mention is `<@…>` (one typed is `&lt;@…`).
        text = _LEADING_MENTION.sub("", text, count=1)
    return from_slack_text(text)


def _open(ack: Ack, session: Session, deps: SlackDeps, body: dict, event: dict, *,
          source: str, text: str) -> None:
    result = intake.open_ticket(
        session, user_id=event.get("user") or "", text=text, source=source,
        channel_id=event.get("channel"), thread_ts=event.get("thread_ts") or event.get("ts") or "",
        team_id=body.get("team_id"), event_id=body.get("event_id"), limit=deps.runtime.ticket_limit,
    )
    if not result.created:
        ack()
        return
    with dispatch.decision_slot(deps.runtime) as slot:
        if slot is None:
            # Stored all the same: the sweep decides on it; the person hears why it waits.
            deferred.enqueue_saved_while_busy(session, result.ticket)
        ack()
        if slot is not None:
            slot.dispatch(result.ticket.ticket_id)


def register(routes: Routes) -> None:
    routes.event("message")(message)
    routes.event("app_mention")(mention)
