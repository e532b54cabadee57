"""The rollback confirm step: Confirm re-checks who clicked, then undoes the action
(with ROLLBACK_APPROVAL=two-person it asks for approval instead: `handlers.approvals`).

The rollback and the notices it owes are written in the request's transaction; the
acknowledgement commits them, then the admin and the ticket's thread are told off the
request path. The admin's answer replaces the confirm step through the click's response
URL: it cannot be clicked twice, and it reaches them in a channel the bot is not in.
Refusals and outages are raised and told by `handlers.errors` (the same way).
"""

from __future__ import annotations

import logging
import uuid

from slack_bolt import Ack
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import InvalidInput
from bot.domain import rollback
from bot.views import ActionId
from bot.workflows import announce
from handlers import approvals
from handlers.deps import SlackDeps
from handlers.routing import Routes

log = logging.getLogger(__name__)

INVALID_BUTTON = "That button is not valid any more. Nothing was rolled back."
CANCELLED = "Rollback cancelled. Nothing changed."


def confirm(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user, channel = _where(body)
    action_id, reason = _confirmed(action)
    if deps.runtime.settings.two_person_rollback:
        approvals.ask(ack, session, deps, user=user or "", channel=channel, action_id=action_id,
                      reason=reason, response_url=body.get("response_url"))
        return
    result = rollback.rollback_action(session, ref=action_id.hex, admin_id=user,
                                      is_admin=deps.is_admin(user), reason=reason,
                                      throttle=deps.runtime.rollback_throttle)
    owed = announce.enqueue_rollback_notice(session, result, deps.runtime.settings)
    ack()
    deps.background.try_submit(announce.announce_rollback, deps.runtime, deps.client, result,
                               admin_channel=channel, admin_id=user, owed=owed,
                               response_url=body.get("response_url"))


def cancel(ack: Ack, body: dict, deps: SlackDeps) -> None:
    ack()
    user, channel = _where(body)
    if user:
        # In place of the confirm step, so it cannot be confirmed after all.
        deps.background.try_submit(announce.reply, deps.client, response_url=body.get("response_url"),
                                   channel=channel, user=user, text=CANCELLED, blocks=[], replace=True)


def _where(body: dict) -> tuple[str, str | None]:
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
    # No user id is nobody: the roles and the rules refuse "".
    return (body.get("user") or {}).get("id") or "", channel


def _confirmed(action: dict) -> tuple[uuid.UUID, str]:
    """The action and reason the Confirm button carries; a tampered one is refused."""
    try:
        return views.parse_rollback_value(action.get("value") or "")
    except ValueError:
        log.warning("refused a rollback confirm with a malformed value")
        raise InvalidInput(INVALID_BUTTON) from None


def register(routes: Routes) -> None:
    routes.action(ActionId.ROLLBACK_CONFIRM.value)(confirm)
    routes.action(ActionId.ROLLBACK_CANCEL.value)(cancel)
