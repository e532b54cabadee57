"""What happens after a listener has acknowledged: decisions and Slack messages.

Each function owns its transactions (like a job) and talks to Slack through one
`WebClient` whose calls never raise for permanent errors (`safe_call`). They run on the
background executor today and are what the Celery tasks will call.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient

from bot import analytics, tickets, views
from bot.feedback import FeedbackResult
from bot.processing import Outcome
from bot.rollback import RollbackResult
from bot.runtime import Runtime
from bot.slack_client import safe_call
from models import transaction

log = logging.getLogger(__name__)


def decide_and_announce(runtime: Runtime, client: WebClient, ticket_id: int) -> Outcome:
    """Decide on a new ticket, then tell the requester (and the escalation channel).

    The decision commits before anything is posted: if Slack is down the action still
    stands and is visible in /history; the message is what may be missing, not the act.
    """
    outcome = runtime.process(ticket_id)
    if outcome.already_processed or outcome.action is None:
        return outcome
    ticket, action = outcome.ticket, outcome.action
    if action.action_type == "AUTO_RESOLVE":
        text, blocks = views.resolution_message(ticket, action, ticket_text=ticket.description)
    else:
        text, blocks = views.action_thread_message(ticket, action)
    posted = _post_for_ticket(client, ticket, text=text, blocks=blocks)
    if posted is not None:
        channel, ts, thread_ts = posted
        with transaction(runtime.sessions) as session:
            tickets.attach_message(
                session, ticket.ticket_id, channel_id=channel, message_ts=ts, thread_ts=thread_ts
            )
    if action.action_type == "ESCALATE" and runtime.settings.escalation_channel:
        safe_call(
            client, "chat.postMessage", channel=runtime.settings.escalation_channel,
            text=f"Ticket #{ticket.ticket_id} from <@{ticket.user_id}>: {text}", blocks=blocks,
        )
    return outcome


def _post_for_ticket(client: WebClient, ticket, *, text: str, blocks: list) -> tuple[str, str, str] | None:
    """Post where the ticket was asked; fall back to a DM when the bot may not post there.

    Returns:
        (channel, message ts, thread root ts), or None when nothing could be posted.
    """
    if ticket.source == "cli" or not ticket.slack_channel_id:
        return None
    thread_ts = ticket.slack_thread_ts or None
    response = safe_call(
        client, "chat.postMessage", channel=ticket.slack_channel_id, text=text, blocks=blocks,
        thread_ts=thread_ts, unfurl_links=False, unfurl_media=False,
    )
    if response is None:
        # A slash command in a channel the bot is not in: answer privately instead.
        dm = safe_call(client, "conversations.open", users=ticket.user_id)
        if dm is None:
            return None
        channel = dm["channel"]["id"]
        response = safe_call(client, "chat.postMessage", channel=channel, text=text, blocks=blocks)
        if response is None:
            return None
        return channel, response["ts"], response["ts"]
    ts = response["ts"]
    return response["channel"], ts, thread_ts or ts


def announce_feedback(
    runtime: Runtime, client: WebClient, result: FeedbackResult, *, channel: str, message_ts: str
) -> None:
    """Show the requester's answer on the message, and route a "No" to humans."""
    ticket, resolution = result.ticket, result.resolution
    with transaction(runtime.sessions) as session:
        action = tickets.action_by_id(session, resolution.action_id)
    text, blocks = views.answered_resolution_message(ticket, action, resolution)
    safe_call(client, "chat.update", channel=channel, ts=message_ts, text=text, blocks=blocks)
    if not result.reopened:
        return
    team = ticket.assigned_team or runtime.settings.default_team
    thread = ticket.slack_thread_ts or message_ts
    safe_call(
        client, "chat.postMessage", channel=channel, thread_ts=thread,
        text=f"Sorry that did not help. I've reopened ticket #{ticket.ticket_id} for {team}; "
        "a person will follow up here.",
    )
    if runtime.settings.escalation_channel:
        text, blocks = views.reopened_notice(ticket, team=team, ticket_text=ticket.description)
        safe_call(client, "chat.postMessage", channel=runtime.settings.escalation_channel,
                  text=text, blocks=blocks)


def announce_rollback(client: WebClient, result: RollbackResult, *, admin_channel: str,
                      admin_id: str) -> None:
    """Tell the admin it is done, and the ticket's thread what changed."""
    text, blocks = views.rollback_done(result)
    safe_call(client, "chat.postEphemeral", channel=admin_channel, user=admin_id,
              text=text, blocks=blocks)
    ticket = result.ticket
    if ticket.slack_channel_id:
        text, blocks = views.rollback_thread_notice(result)
        safe_call(client, "chat.postMessage", channel=ticket.slack_channel_id,
                  thread_ts=ticket.slack_thread_ts or None, text=text, blocks=blocks)


def publish_home(runtime: Runtime, client: WebClient, user_id: str, *, is_admin: bool) -> None:
    """Render the App Home tab with the last 30 days' figures."""
    with transaction(runtime.sessions) as session:
        stats = analytics.resolution_stats(session, days=30)
    safe_call(client, "views.publish", user_id=user_id, view=views.home_view(stats, is_admin=is_admin))


def tell(client: WebClient, *, channel: str, user: str, text: str, blocks: list | None = None) -> None:
    """An ephemeral message only `user` sees (a refusal, an error, a "Why?")."""
    safe_call(client, "chat.postEphemeral", channel=channel, user=user, text=text,
              blocks=blocks if blocks is not None else views.error_message(text))
