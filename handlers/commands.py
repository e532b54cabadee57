"""Slash commands: /ticket, /history, /rollback, /resolution-stats.

A slash command's acknowledgement is its answer (ephemeral), so each command does its
fast database work first and acknowledges with the result; slow work goes to the
background executor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from slack_bolt import Ack, App, Respond
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import NotAuthorized, ResolveMeQError
from bot.domain import analytics, intake, rollback, tickets
from bot.workflows import announce
from handlers.deps import SlackDeps
from models import TicketSource, transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_DOWN = (
    "Sorry, I can't reach the helpdesk database right now, so nothing was saved. "
    "Please try again in a minute."
)
STATS_PENDING = "Counting… the figures will appear here in a moment."
ROLLBACK_USAGE = "Usage: `/rollback <action-id> [reason]` (the first 8 characters of the id are enough)."


def _refuse(ack: Ack, text: str) -> None:
    ack(response_type="ephemeral", text=text, blocks=views.error_message(text))


def _in_transaction(ack: Ack, deps: SlackDeps, what: str, work: Callable[[Session], T]) -> T | None:
    """Run `work` in one transaction; on a refusal or a database outage, answer the
    person and return None (nothing was written)."""
    result, refusal = _attempt(deps, what, work)
    if refusal is not None:
        _refuse(ack, refusal)
    return result


def _attempt(deps: SlackDeps, what: str, work: Callable[[Session], T]) -> tuple[T | None, str | None]:
    """`work` in one transaction: (its result, None), or (None, what to tell the person)."""
    try:
        with transaction(deps.runtime.sessions) as session:
            return work(session), None
    except ResolveMeQError as error:
        return None, error.message
    except SQLAlchemyError:
        log.exception("could not %s", what)
        return None, DB_DOWN


def open_ticket(ack: Ack, command: dict, deps: SlackDeps) -> None:
    ticket = _in_transaction(ack, deps, "store a ticket", lambda session: intake.open_ticket(
        session, user_id=command["user_id"], text=command.get("text", ""),
        source=TicketSource.SLASH_COMMAND, channel_id=command.get("channel_id"),
        team_id=command.get("team_id"),
        # One ticket per invocation, even if the same request reaches us twice.
        event_id=f"cmd:{command['trigger_id']}" if command.get("trigger_id") else None,
        user_name=command.get("user_name"),
    ).ticket)
    if ticket is None:
        return
    text, blocks = views.ticket_received(ticket.ticket_id, ticket.description)
    ack(response_type="ephemeral", text=text, blocks=blocks)
    deps.background.submit(announce.decide_and_announce, deps.runtime, deps.client, ticket.ticket_id)


def show_history(ack: Ack, command: dict, deps: SlackDeps) -> None:
    user = command["user_id"]

    def read(session: Session):
        ticket, rows = tickets.history(session, tickets.parse_ticket_ref(command.get("text", "")))
        if ticket.user_id != user and not deps.is_admin(user):
            raise NotAuthorized("Only the requester and helpdesk admins can see a ticket's history.")
        return ticket, rows

    found = _in_transaction(ack, deps, "read history", read)
    if found is not None:
        ticket, rows = found
        ack(response_type="ephemeral", text=f"History of ticket #{ticket.ticket_id}",
            blocks=views.history_blocks(ticket.ticket_id, rows))


def start_rollback(ack: Ack, command: dict, deps: SlackDeps) -> None:
    user = command["user_id"]
    ref, _, reason = (command.get("text") or "").strip().partition(" ")
    if not ref:
        return _refuse(ack, ROLLBACK_USAGE)
    preview = _in_transaction(ack, deps, "preview a rollback", lambda session: rollback.preview_rollback(
        session, ref=ref, admin_id=user, is_admin=deps.is_admin(user),
        throttle=deps.runtime.rollback_throttle,
    ))
    if preview is not None:
        ack(response_type="ephemeral", text=f"Roll back {preview.short_id}?",
            blocks=views.rollback_confirm(preview, reason=reason.strip()))


def show_stats(ack: Ack, command: dict, respond: Respond, deps: SlackDeps) -> None:
    raw = (command.get("text") or "").strip()
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
        return _refuse(ack, "Usage: `/resolution-stats [days]`, for example `/resolution-stats 7`.")
    # The figures take seconds over a large history (bench/queries.py: 1.9 s for 90
    # days at 1M actions). Wait for them briefly: if they are ready they are the
    # acknowledgement, else acknowledge now and send them to the response URL.
    pending = deps.background.submit(_stats_answer, deps, int(raw) if raw else 30)
    try:
        text, blocks = pending.result(timeout=deps.runtime.settings.stats_ack_wait)
    except TimeoutError:
        ack(response_type="ephemeral", text=STATS_PENDING)
        pending.add_done_callback(lambda done: _respond_later(respond, *done.result()))
        return
    ack(response_type="ephemeral", text=text, blocks=blocks)


def _stats_answer(deps: SlackDeps, days: int) -> tuple[str, list]:
    """The stats message, or the refusal to show instead (never raises)."""
    stats, refusal = _attempt(deps, "compute stats",
                              lambda session: analytics.resolution_stats(session, days=days))
    if refusal is not None:
        return refusal, views.error_message(refusal)
    return "Resolution stats", views.stats_blocks(stats)


def _respond_later(respond: Respond, text: str, blocks: list) -> None:
    try:
        respond(response_type="ephemeral", replace_original=True, text=text, blocks=blocks)
    except Exception:  # the response URL is Slack's; nothing to retry into
        log.exception("could not send the stats to the response URL")


def register(app: App) -> None:
    app.command("/ticket")(open_ticket)
    app.command("/history")(show_history)
    app.command("/rollback")(start_rollback)
    app.command("/resolution-stats")(show_stats)
