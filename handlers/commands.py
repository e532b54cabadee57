"""Slash commands: /ticket, /history, /rollback, /resolution-stats.

A slash command's acknowledgement is its answer (ephemeral): each command does its
fast database work in the request's transaction, acknowledges with the result (which
commits, `handlers.transaction`), then hands slow work to the background executor. A
refusal, an outage or a full executor (`Busy`) is raised and answered by
`handlers.errors`.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, Respond
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import InvalidInput, NotAuthorized, ResolveMeQError
from bot.domain import (
    analytics,
    autonomy,
    conversation,
    experiment_stats,
    experiments,
    intake,
    rollback,
    sla,
    tickets,
)
from bot.views.escape import from_slack_text
from bot.workflows import dispatch
from bot.workflows.runtime import Runtime
from handlers.deps import SlackDeps
from handlers.errors import DB_DOWN, said_for
from handlers.routing import Routes
from models import TicketSource, read_transaction

log = logging.getLogger(__name__)

STATS_PENDING = "Counting… the figures will appear here in a moment."
STATS_USAGE = "Usage: `/resolution-stats [days]`, for example `/resolution-stats 7`."
ROLLBACK_USAGE = "Usage: `/rollback <action-id> [reason]` (the first 8 characters of the id are enough)."


def open_ticket(ack: Ack, command: dict, session: Session, deps: SlackDeps) -> None:
    # Private stays private: outside HELPDESK_CHANNELS the requester alone hears back.
    private = not deps.runtime.settings.is_helpdesk_channel(command.get("channel_id"))
    ticket = intake.open_ticket(
        session, user_id=command["user_id"], text=from_slack_text(command.get("text") or ""),
        source=TicketSource.SLASH_COMMAND, channel_id=command.get("channel_id"),
        team_id=command.get("team_id"),
        # One ticket per invocation, even if the same request reaches us twice.
        event_id=f"cmd:{command['trigger_id']}" if command.get("trigger_id") else None,
        user_name=command.get("user_name"), private=private, limit=deps.runtime.ticket_limit,
    ).ticket
    # Taken before the ack, which must say whether the bot starts now. Without a place
    # the ticket is stored all the same, and the sweep decides on it in a few minutes.
    with dispatch.decision_slot(deps.runtime) as slot:
        text, blocks = views.ticket_received(ticket.ticket_id, ticket.description, busy=slot is None,
                                             privately=private)
        ack(response_type="ephemeral", text=text, blocks=blocks)
        if slot is not None:
            slot.dispatch(ticket.ticket_id)


def show_history(ack: Ack, command: dict, session: Session, deps: SlackDeps) -> None:
    user = command["user_id"]
    ticket, rows = tickets.history(session, tickets.parse_ticket_ref(command.get("text", "")))
    if ticket.user_id != user and not deps.is_admin(user):
        raise NotAuthorized("Only the requester and helpdesk admins can see a ticket's history.")
    ack(response_type="ephemeral", text=f"History of ticket #{ticket.ticket_id}",
        blocks=views.history_blocks(ticket.ticket_id, rows,
                                    said=tickets.requester_said(session, ticket.ticket_id),
                                    conversation=conversation.replies(session, ticket.ticket_id),
                                    sla=sla.ticket_sla(session, ticket.ticket_id)))


def start_rollback(ack: Ack, command: dict, session: Session, deps: SlackDeps) -> None:
    user = command["user_id"]
    ref, _, reason = from_slack_text(command.get("text") or "").strip().partition(" ")
    if not ref:
        raise InvalidInput(ROLLBACK_USAGE)
    preview = rollback.preview_rollback(session, ref=ref, admin_id=user, is_admin=deps.is_admin(user),
                                        throttle=deps.runtime.rollback_throttle)
    ack(response_type="ephemeral", text=f"Roll back {preview.short_id}?",
        blocks=views.rollback_confirm(preview, reason=reason.strip(),
                                      two_person=deps.runtime.settings.two_person_rollback))


def show_stats(ack: Ack, command: dict, respond: Respond, deps: SlackDeps) -> None:
    raw = (command.get("text") or "").strip()
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
        raise InvalidInput(STATS_USAGE)
    # The figures take seconds over a large history (bench/queries.py: 1.9 s for 90
    # days at 1M actions), so they are counted on the reads' executor (never in front of
    # a decision) in a transaction of their own; when it is full the person hears the
    # bot is busy. Wait for them briefly: if they are ready they are the
    # acknowledgement, else acknowledge now and send them to the response URL.
    pending = deps.reads.submit(_stats_answer, deps.runtime, command, int(raw) if raw else 30)
    try:
        text, blocks = pending.result(timeout=deps.runtime.settings.stats_ack_wait)
    except TimeoutError:
        ack(response_type="ephemeral", text=STATS_PENDING)
        pending.add_done_callback(lambda done: _respond_later(respond, *done.result()))
        return
    ack(response_type="ephemeral", text=text, blocks=blocks)


def _stats_answer(runtime: Runtime, command: dict, days: int) -> tuple[str, list]:
    """The stats message, or what to say instead. A refusal or an outage is returned,
    not raised: the answer may go to the response URL, past the error handler."""
    try:
        with read_transaction(runtime.sessions) as session:
            stats = analytics.resolution_stats(session, days=days)
            comments = analytics.latest_comments(session, stats.since)
            # What the bot would have done in shadow mode, beside what people did.
            shadow = autonomy.shadow_comparison(session, days=days)
            levels = sla.sla_stats(session, since=stats.since)
            # The running THRESHOLD_EXPERIMENT's results, whatever the window.
            running = experiments.running(session)
            trial = experiment_stats.results(session, running) if running is not None else None
    except (ResolveMeQError, SQLAlchemyError) as error:
        # Both kinds always have a sentence (None is for an unexpected error).
        text = said_for(error, command) or DB_DOWN
        return text, views.error_message(text)
    return "Resolution stats", views.stats_blocks(stats, comments=comments, shadow=shadow, sla=levels,
                                                  experiment=trial)


def _respond_later(respond: Respond, text: str, blocks: list) -> None:
    try:
        respond(response_type="ephemeral", replace_original=True, text=text, blocks=blocks)
    except Exception:  # the response URL is Slack's; nothing to retry into
        log.exception("could not send the stats to the response URL")


def register(routes: Routes) -> None:
    routes.command("/ticket")(open_ticket)
    routes.command("/history")(show_history)
    routes.command("/rollback")(start_rollback)
    routes.command("/resolution-stats")(show_stats)
