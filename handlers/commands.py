"""Slash commands: /ticket, /history, /rollback, /resolution-stats.

A slash command's acknowledgement is its answer (ephemeral), so each command does its
fast database work first and acknowledges with the result; slow work goes to the
background executor.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from sqlalchemy.exc import SQLAlchemyError

from bot import analytics, intake, rollback, tickets, views, workflows
from bot.app import SlackDeps
from bot.errors import NotAuthorized, ResolveMeQError
from models import transaction

log = logging.getLogger(__name__)

DB_DOWN = (
    "Sorry, I can't reach the helpdesk database right now, so nothing was saved. "
    "Please try again in a minute."
)
ROLLBACK_USAGE = "Usage: `/rollback <action-id> [reason]` (the first 8 characters of the id are enough)."


def _refuse(ack: Ack, text: str) -> None:
    ack(response_type="ephemeral", text=text, blocks=views.error_message(text))


def open_ticket(ack: Ack, command: dict, deps: SlackDeps) -> None:
    try:
        with transaction(deps.runtime.sessions) as session:
            ticket = intake.open_ticket(
                session, user_id=command["user_id"], text=command.get("text", ""),
                source="slash_command", channel_id=command.get("channel_id"),
                team_id=command.get("team_id"),
                # One ticket per invocation, even if the same request reaches us twice.
                event_id=f"cmd:{command['trigger_id']}" if command.get("trigger_id") else None,
                user_name=command.get("user_name"),
            ).ticket
    except ResolveMeQError as error:
        return _refuse(ack, error.message)
    except SQLAlchemyError:
        log.exception("could not store a ticket")
        return _refuse(ack, DB_DOWN)
    text, blocks = views.ticket_received(ticket.ticket_id, ticket.description)
    ack(response_type="ephemeral", text=text, blocks=blocks)
    deps.background.submit(workflows.decide_and_announce, deps.runtime, deps.client, ticket.ticket_id)


def show_history(ack: Ack, command: dict, deps: SlackDeps) -> None:
    user = command["user_id"]
    try:
        ticket_id = tickets.parse_ticket_ref(command.get("text", ""))
        with transaction(deps.runtime.sessions) as session:
            ticket, rows = tickets.history(session, ticket_id)
            if ticket.user_id != user and not deps.is_admin(user):
                raise NotAuthorized("Only the requester and helpdesk admins can see a ticket's history.")
    except ResolveMeQError as error:
        return _refuse(ack, error.message)
    except SQLAlchemyError:
        log.exception("could not read history")
        return _refuse(ack, DB_DOWN)
    ack(response_type="ephemeral", text=f"History of ticket #{ticket_id}",
        blocks=views.history_blocks(ticket_id, rows))


def start_rollback(ack: Ack, command: dict, deps: SlackDeps) -> None:
    user = command["user_id"]
    ref, _, reason = (command.get("text") or "").strip().partition(" ")
    if not ref:
        return _refuse(ack, ROLLBACK_USAGE)
    try:
        with transaction(deps.runtime.sessions) as session:
            preview = rollback.preview_rollback(
                session, ref=ref, admin_id=user, is_admin=deps.is_admin(user),
                throttle=deps.runtime.rollback_throttle,
            )
    except ResolveMeQError as error:
        return _refuse(ack, error.message)
    except SQLAlchemyError:
        log.exception("could not preview a rollback")
        return _refuse(ack, DB_DOWN)
    ack(response_type="ephemeral", text=f"Roll back {preview.short_id}?",
        blocks=views.rollback_confirm(preview, reason=reason.strip()))


def show_stats(ack: Ack, command: dict, deps: SlackDeps) -> None:
    raw = (command.get("text") or "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):
        return _refuse(ack, "Usage: `/resolution-stats [days]`, for example `/resolution-stats 7`.")
    try:
        with transaction(deps.runtime.sessions) as session:
            stats = analytics.resolution_stats(session, days=int(raw) if raw else 30)
    except ResolveMeQError as error:
        return _refuse(ack, error.message)
    except SQLAlchemyError:
        log.exception("could not compute stats")
        return _refuse(ack, DB_DOWN)
    ack(response_type="ephemeral", text="Resolution stats", blocks=views.stats_blocks(stats))


def register(app: App) -> None:
    app.command("/ticket")(open_ticket)
    app.command("/history")(show_history)
    app.command("/rollback")(start_rollback)
    app.command("/resolution-stats")(show_stats)
