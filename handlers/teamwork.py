"""A team notice's buttons, Take it and Resolve, and the resolve modal's submission.

Who may act is checked at click time (and again on submit): a member of the channel
the ticket's team works in, or an admin. The change and the posts it owes are written
in the request's transaction; the ack commits them; then the requester is told and
the ticket's team notices are redrawn, off the request path. Refusals and outages are
raised and answered by `handlers.errors` (in the modal itself, for a submission).
"""

from __future__ import annotations

import logging

from slack_bolt import Ack
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import InvalidInput
from bot.domain import teamwork
from bot.views import ActionId, BlockId, CallbackId
from bot.workflows import announce
from bot.workflows import teamwork as team_notices
from handlers.deps import SlackDeps
from handlers.routing import Routes

log = logging.getLogger(__name__)

INVALID_BUTTON = "That button is not valid any more. Nothing was changed."
INVALID_FORM = "This form is not valid any more. Close it and click Resolve again."


def take(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user, channel = _where(body)
    result = teamwork.take_ticket(session, ticket_id=_ticket(action.get("value"), INVALID_BUTTON),
                                  user_id=user, settings=deps.runtime.settings, may_act=deps.may_act(user))
    owed = team_notices.enqueue_taken(session, result)
    ack()
    if result.changed:
        deps.background.try_submit(team_notices.announce_team_work, deps.runtime, deps.client,
                                   result.ticket.ticket_id, owed)
    elif channel:
        deps.background.try_submit(announce.tell, deps.client, channel=channel, user=user,
                                   text=f"You have ticket #{result.ticket.ticket_id} already.",
                                   blocks=[])


def start_resolve(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user, channel = _where(body)
    ticket = teamwork.check_may_resolve(
        session, ticket_id=_ticket(action.get("value"), INVALID_BUTTON), user_id=user,
        settings=deps.runtime.settings, may_act=deps.may_act(user))
    ack()
    # Here, not on the background executor: the trigger is valid for 3 s from the click,
    # and a queue behind slow work could outlast it.
    team_notices.open_resolve_modal(deps.client, trigger_id=body.get("trigger_id") or "", ticket=ticket,
                                    channel=channel, user=user)


def submit_resolution(ack: Ack, body: dict, view: dict, session: Session, deps: SlackDeps) -> None:
    user = (body.get("user") or {}).get("id") or ""
    # private_metadata comes back from the client: read strictly, then re-checked.
    ticket_id = _ticket(view.get("private_metadata"), INVALID_FORM)
    result = teamwork.resolve_ticket(session, ticket_id=ticket_id, user_id=user, note=_note(view),
                                     settings=deps.runtime.settings, may_act=deps.may_act(user))
    owed = team_notices.enqueue_resolution(session, result)
    ack()
    deps.background.try_submit(team_notices.announce_team_work, deps.runtime, deps.client, ticket_id,
                               owed)


def _where(body: dict) -> tuple[str, str | None]:
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
    # No user id is nobody: the roles and the rules refuse "".
    return (body.get("user") or {}).get("id") or "", channel


def _ticket(value: object, refusal: str) -> int:
    try:
        return views.parse_ticket_value(value)
    except ValueError:
        log.warning("refused a team click or form with a malformed ticket value")
        raise InvalidInput(refusal) from None


def _note(view: dict) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(BlockId.RESOLUTION_NOTE) or {}
    note = (values.get(ActionId.RESOLUTION_NOTE) or {}).get("value")
    # A missing or non-text note is the domain's to refuse, like an empty one.
    return note if isinstance(note, str) else ""


def register(routes: Routes) -> None:
    routes.action(ActionId.TEAM_TAKE.value)(take)
    routes.action(ActionId.TEAM_RESOLVE.value)(start_resolve)
    routes.view(CallbackId.RESOLVE_TICKET.value)(submit_resolution)
