"""The rollback confirm step: Confirm re-checks who clicked, then undoes the action."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from sqlalchemy.exc import SQLAlchemyError

from bot import views
from bot.core.errors import ResolveMeQError
from bot.domain import rollback
from bot.views import ActionId
from bot.workflows import announce
from handlers.deps import SlackDeps
from models import transaction

log = logging.getLogger(__name__)


def confirm(ack: Ack, body: dict, action: dict, deps: SlackDeps) -> None:
    ack()
    user = (body.get("user") or {}).get("id")
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")

    def tell(text: str) -> None:
        if channel and user:
            deps.background.submit(announce.tell, deps.client, channel=channel, user=user, text=text)

    try:
        action_id, reason = views.parse_rollback_value(action.get("value") or "")
    except ValueError:
        log.warning("refused a rollback confirm with a malformed value")
        return tell("That button is not valid any more. Nothing was rolled back.")
    try:
        with transaction(deps.runtime.sessions) as session:
            result = rollback.rollback_action(
                session, ref=action_id.hex, admin_id=user, is_admin=deps.is_admin(user),
                reason=reason, throttle=deps.runtime.rollback_throttle,
            )
            owed = announce.enqueue_rollback_notice(session, result, deps.runtime.settings)
    except ResolveMeQError as error:
        return tell(error.message)
    except SQLAlchemyError:
        log.exception("could not roll back")
        return tell("Sorry, I can't reach the helpdesk database right now; nothing was rolled back.")
    deps.background.submit(announce.announce_rollback, deps.runtime, deps.client, result,
                           admin_channel=channel, admin_id=user, owed=owed)


def cancel(ack: Ack, body: dict, deps: SlackDeps) -> None:
    ack()
    user = (body.get("user") or {}).get("id")
    channel = (body.get("container") or {}).get("channel_id")
    if channel and user:
        deps.background.submit(announce.tell, deps.client, channel=channel, user=user,
                               text="Rollback cancelled. Nothing changed.", blocks=[])


def register(app: App) -> None:
    app.action(ActionId.ROLLBACK_CONFIRM.value)(confirm)
    app.action(ActionId.ROLLBACK_CANCEL.value)(cancel)
