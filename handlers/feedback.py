"""The requester's answer on a resolution: Yes/No, 1-5 stars, and "Why?".

Acknowledge first; then parse the button strictly (a tampered value stores nothing),
record the answer (only the requester's counts), and update the message off the
request path.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from sqlalchemy.exc import SQLAlchemyError

from bot import views
from bot.core.errors import NotRequester, ResolveMeQError
from bot.domain import feedback, tickets
from bot.views import ActionId
from bot.workflows import announce
from handlers.deps import SlackDeps
from models import transaction

log = logging.getLogger(__name__)

INVALID_BUTTON = "That button is not valid any more. Nothing was recorded."


def _where(body: dict) -> tuple[str | None, str | None, str | None]:
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    return (body.get("user") or {}).get("id"), channel, container.get("message_ts")


def _tell(deps: SlackDeps, channel: str | None, user: str | None, text: str) -> None:
    if channel and user:
        deps.background.submit(announce.tell, deps.client, channel=channel, user=user, text=text)


def _record(deps: SlackDeps, body: dict, action: dict, *, solved: bool | None) -> None:
    user, channel, message_ts = _where(body)
    try:
        ticket_id, score = views.parse_feedback_value(action.get("value") or "")
        if solved is None:
            if score is None or views.parse_rating_action_id(action.get("action_id", "")) != score:
                raise ValueError("rating button and value disagree")
        elif score is not None:
            raise ValueError("a Yes/No button carries no score")
    except ValueError:
        log.warning("refused a feedback click with a malformed button value")
        return _tell(deps, channel, user, INVALID_BUTTON)
    settings = deps.runtime.settings
    try:
        with transaction(deps.runtime.sessions) as session:
            if solved is None:
                result = feedback.record_rating(session, ticket_id=ticket_id, user_id=user, score=score)
            else:
                result = feedback.record_answer(session, ticket_id=ticket_id, user_id=user,
                                                solved=solved, default_team=settings.default_team)
            owed = announce.enqueue_reopen_notices(
                session, result, settings, channel=channel, message_ts=message_ts
            ) if solved is False and channel and message_ts else []
    except NotRequester as error:
        return _tell(deps, channel, user, error.message)
    except ResolveMeQError as error:
        return _tell(deps, channel, user, error.message)
    except SQLAlchemyError:
        log.exception("could not record feedback")
        return _tell(deps, channel, user,
                     "Sorry, I couldn't save that right now. Please click again in a minute.")
    if result.changed and channel and message_ts:
        deps.background.submit(announce.announce_feedback, deps.runtime, deps.client, result,
                               channel=channel, message_ts=message_ts, owed=owed)


def yes(ack: Ack, body: dict, action: dict, deps: SlackDeps) -> None:
    ack()
    _record(deps, body, action, solved=True)


def no(ack: Ack, body: dict, action: dict, deps: SlackDeps) -> None:
    ack()
    _record(deps, body, action, solved=False)


def rate(ack: Ack, body: dict, action: dict, deps: SlackDeps) -> None:
    ack()
    _record(deps, body, action, solved=None)


def why(ack: Ack, body: dict, action: dict, deps: SlackDeps) -> None:
    ack()
    user, channel, _ = _where(body)
    try:
        action_id = views.parse_why_value(action.get("value") or "")
        with transaction(deps.runtime.sessions) as session:
            row = tickets.action_by_id(session, action_id)
    except ValueError:
        return _tell(deps, channel, user, INVALID_BUTTON)
    except ResolveMeQError as error:
        return _tell(deps, channel, user, error.message)
    text, blocks = views.reasoning_message(row)
    if channel and user:
        deps.background.submit(announce.tell, deps.client, channel=channel, user=user,
                               text=text, blocks=blocks)


def register(app: App) -> None:
    app.action(ActionId.FEEDBACK_YES.value)(yes)
    app.action(ActionId.FEEDBACK_NO.value)(no)
    app.action(views.RATING_ACTION_RE)(rate)
    app.action(ActionId.WHY.value)(why)
