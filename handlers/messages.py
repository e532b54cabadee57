"""Tickets from a DM to the bot or an @-mention in a channel.

Events are acknowledged first (an empty 200 is all Slack wants); the ticket is stored
with Slack's event_id, so a retried delivery (X-Slack-Retry-Num) opens no second one.
"""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from sqlalchemy.exc import SQLAlchemyError

from bot.core.errors import ResolveMeQError
from bot.domain import intake
from bot.workflows import announce
from handlers.deps import SlackDeps
from models import TicketSource, transaction

log = logging.getLogger(__name__)

_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")


def _open(deps: SlackDeps, body: dict, event: dict, *, source: str, text: str) -> None:
    user = event.get("user")
    channel = event.get("channel")
    try:
        with transaction(deps.runtime.sessions) as session:
            result = intake.open_ticket(
                session, user_id=user, text=text, source=source, channel_id=channel,
                thread_ts=event.get("thread_ts") or event.get("ts") or "",
                team_id=body.get("team_id"), event_id=body.get("event_id"),
            )
    except ResolveMeQError as error:
        if user and channel:
            deps.background.submit(announce.tell, deps.client, channel=channel, user=user,
                                   text=error.message)
        return
    except SQLAlchemyError:
        log.exception("could not store a ticket from an event")
        if user and channel:
            deps.background.submit(
                announce.tell, deps.client, channel=channel, user=user,
                text="Sorry, I can't reach the helpdesk database right now, so nothing was "
                "saved. Please send that again in a minute.",
            )
        return
    if result.created:
        deps.background.submit(
            announce.decide_and_announce, deps.runtime, deps.client, result.ticket.ticket_id
        )


def direct_message(ack: Ack, body: dict, event: dict, deps: SlackDeps) -> None:
    ack()
    # Only a person's new message in a DM with the bot is a request. (Bolt's event
    # matcher ignores channel_type, so every message event arrives here.) Edits, bot
    # posts, thread replies and channel chatter are not.
    if event.get("channel_type") != "im":
        return
    if event.get("subtype") or event.get("bot_id") or event.get("thread_ts"):
        return
    # Text of the wrong type is intake's to refuse, like empty text.
    _open(deps, body, event, source=TicketSource.DM, text=event.get("text") or "")


def mention(ack: Ack, body: dict, event: dict, deps: SlackDeps) -> None:
    ack()
    if event.get("bot_id"):
        return
    raw = event.get("text")
    # The mention is cut before intake sees the text; text of the wrong type is empty.
    text = _LEADING_MENTION.sub("", raw if isinstance(raw, str) else "", count=1)
    _open(deps, body, event, source=TicketSource.MENTION, text=text)


def register(app: App) -> None:
    app.event("message")(direct_message)
    app.event("app_mention")(mention)
