"""After a listener's ack, for the requester's side: a ticket opened from a message,
detail added from App Home, a withdrawal. Each owns its transactions, like a job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import views
from bot.delivery import outbox
from bot.delivery.slack_client import safe_call
from bot.domain.message_tickets import Message
from bot.domain.requester import DetailAdded
from bot.views.escape import from_slack_text
from bot.workflows import dispatch
from bot.workflows import teamwork as team_notices
from bot.workflows.dispatch import DecisionKind
from bot.workflows.home import HomeFigures, publish_home
from bot.workflows.runtime import Runtime
from models import Ticket

log = logging.getLogger(__name__)

MODAL_FAILED = "Sorry, Slack did not open the form. Please click Add detail again."


def fetch_message(client: WebClient, channel: str, ts: str) -> Message | None:
    """The message at `ts` in `channel`, read from Slack, or None if it cannot be read.

    A top-level message comes from conversations.history; a reply in a thread is not
    there, and comes from conversations.replies. Each is asked for `ts` alone (latest=ts,
    inclusive, limit=1; for replies also oldest=ts, and room for the thread's parent,
    which may be listed first), and the answer is searched for `ts` all the same.
    """
    asks: list[tuple[str, dict[str, Any]]] = [
        ("conversations.history", {"channel": channel, "latest": ts, "inclusive": True, "limit": 1}),
        ("conversations.replies", {"channel": channel, "ts": ts, "oldest": ts, "latest": ts,
                                   "inclusive": True, "limit": 2}),
    ]
    for method, args in asks:
        answer = safe_call(client, method, **args)
        messages = (answer.get("messages") if answer is not None else None) or []
        found = next((m for m in messages if isinstance(m, dict) and m.get("ts") == ts), None)
        if found is not None:
            return message_from_payload(found, channel_id=channel)
    return None


def message_from_payload(message: dict, *, channel_id: str) -> Message:
    """A Slack message dict (from the Web API or a message shortcut's payload) as a Message,
    its text as the author typed it (Slack sends it escaped)."""
    text = message.get("text")
    ts = message.get("ts")
    thread = message.get("thread_ts")
    return Message(
        channel_id=channel_id, ts=ts if isinstance(ts, str) else "",
        author_id=message.get("user") if isinstance(message.get("user"), str) else None,
        text=from_slack_text(text) if isinstance(text, str) else "",
        thread_ts=thread if isinstance(thread, str) else "",
        from_bot=bool(message.get("bot_id") or message.get("subtype") in ("bot_message", "app_message")),
    )


def enqueue_opened(session: Session, ticket: Ticket, *, reporter_id: str | None) -> list[int]:
    """The word in the message's thread that its ticket is open (the request's transaction)."""
    if not ticket.slack_channel_id:
        return []
    # A shortcut works in channels the bot is not in: then the author hears it by DM.
    return [outbox.enqueue(session, purpose=outbox.NOTICE, channel=ticket.slack_channel_id,
                           thread_ts=ticket.slack_thread_ts or None, ticket_id=ticket.ticket_id,
                           text=views.opened_from_message(ticket, reporter_id=reporter_id),
                           fallback_user=ticket.user_id).id]


def open_detail_modal(client: WebClient, *, trigger_id: str, ticket: Ticket, user: str) -> bool:
    """Open the Add detail modal for the click's trigger (valid 3 s: call this first).

    Returns:
        Whether it opened; if not, the requester is told in their DM with the bot.
    """
    opened = safe_call(client, "views.open", trigger_id=trigger_id, view=views.add_detail_modal(ticket))
    if opened is None:
        safe_call(client, "chat.postMessage", channel=user, text=MODAL_FAILED)
    return opened is not None


def tell_in_dm(client: WebClient, *, user: str, text: str) -> None:
    """A word to `user` in their DM with the bot (a refusal of a click in App Home)."""
    safe_call(client, "chat.postMessage", channel=user, text=text, blocks=views.error_message(text))


def enqueue_detail_for_holder(session: Session, added: DetailAdded, detail: str) -> list[int]:
    """A DM to the person who has the ticket, with what its requester added."""
    ticket = added.ticket
    if not ticket.assigned_to:
        return []
    return [outbox.enqueue(session, purpose=outbox.NOTICE, channel=ticket.assigned_to,
                           ticket_id=ticket.ticket_id,
                           text=views.detail_for_holder(ticket, detail)).id]


def after_detail(runtime: Runtime, client: WebClient, ticket_id: int, *, redecide: bool,
                 owed: Sequence[int], user_id: str, is_admin: bool, figures: HomeFigures) -> None:
    """After detail was added: hand the re-decision of a ticket nobody has to the dispatch
    seam (`DecisionKind.DETAIL`: a worker with DECIDE_ON=workers, else this process's
    pool; it answers in the ticket's thread and redraws the team's notices), tell
    whoever has it, and redraw the requester's Home."""
    if redecide:
        dispatch.dispatch_decision(runtime, ticket_id, DecisionKind.DETAIL)
    outbox.deliver(runtime.sessions, client, list(owed), ttl=runtime.settings.claim_ttl)
    publish_home(client, user_id, is_admin=is_admin, figures=figures, refresh=True)


def after_withdraw(runtime: Runtime, client: WebClient, ticket_id: int, *, user_id: str,
                   is_admin: bool, figures: HomeFigures) -> None:
    """After a withdrawal: the team's notices say so (no buttons), and the Home drops it."""
    team_notices.refresh_team_notices(runtime, client, ticket_id)
    publish_home(client, user_id, is_admin=is_admin, figures=figures, refresh=True)

