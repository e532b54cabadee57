"""Tickets from a DM to the bot or an @-mention in a channel.

The ticket is stored in the request's transaction with Slack's event_id, so a retried
delivery (X-Slack-Retry-Num) opens no second one; the acknowledgement (an empty 200 is
all Slack wants) commits it, then the decision runs off the request path (or, when the
decision executor is full, the sweep decides on it and the sender is told it may take a
few minutes). A refusal or an outage is raised and told to the sender by `handlers.errors`.
"""

from __future__ import annotations

import re

from slack_bolt import Ack, App
from sqlalchemy.orm import Session

from bot.domain import intake
from bot.workflows import deferred, dispatch
from handlers.deps import SlackDeps
from models import TicketSource

_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")


def direct_message(ack: Ack, body: dict, event: dict, session: Session, deps: SlackDeps) -> None:
    # Only a person's new message in a DM with the bot is a request. (Bolt's event
    # matcher ignores channel_type, so every message event arrives here.) Edits, bot
    # posts, thread replies and channel chatter are not.
    if event.get("channel_type") != "im":
        ack()
        return
    if event.get("subtype") or event.get("bot_id") or event.get("thread_ts"):
        ack()
        return
    # Text of the wrong type is intake's to refuse, like empty text.
    _open(ack, session, deps, body, event, source=TicketSource.DM, text=event.get("text") or "")


def mention(ack: Ack, body: dict, event: dict, session: Session, deps: SlackDeps) -> None:
    if event.get("bot_id"):
        ack()
        return
    raw = event.get("text")
    # The mention is cut before intake sees the text; text of the wrong type is empty.
    text = _LEADING_MENTION.sub("", raw if isinstance(raw, str) else "", count=1)
    _open(ack, session, deps, body, event, source=TicketSource.MENTION, text=text)


def _open(ack: Ack, session: Session, deps: SlackDeps, body: dict, event: dict, *,
          source: str, text: str) -> None:
    result = intake.open_ticket(
        session, user_id=event.get("user") or "", text=text, source=source,
        channel_id=event.get("channel"), thread_ts=event.get("thread_ts") or event.get("ts") or "",
        team_id=body.get("team_id"), event_id=body.get("event_id"),
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


def register(app: App) -> None:
    app.event("message")(direct_message)
    app.event("app_mention")(mention)
