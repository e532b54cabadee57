"""The requester's buttons on their open tickets in App Home: Add detail (a modal) and
Withdraw, and the modal's submission.

Only the requester may use them (checked at click time and again on submit; a try by
anyone else is refused and audited). The change is written in the request's
transaction and committed by the ack; then, off the request path, a ticket nobody has
is decided again, the team's notices are redrawn and the requester's Home is drawn
again. Refusals and outages are raised and answered by `handlers.errors` (in the modal
itself, for a submission).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import InvalidInput
from bot.domain import requester
from bot.views import ActionId, BlockId, CallbackId
from bot.workflows import requester as flows
from handlers.deps import SlackDeps
from handlers.routing import Routes

log = logging.getLogger(__name__)

INVALID_BUTTON = "That button is not valid any more. Nothing was changed."
INVALID_FORM = "This form is not valid any more. Close it and click Add detail again."


def start_detail(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user = _user(body)
    ticket = requester.check_may_change(session, ticket_id=_ticket(action.get("value"), INVALID_BUTTON),
                                        user_id=user)
    ack()
    # Here, not on the background executor: the trigger is valid for 3 s from the click.
    flows.open_detail_modal(deps.client, trigger_id=body.get("trigger_id") or "", ticket=ticket, user=user)


def submit_detail(ack: Ack, body: dict, view: dict, session: Session, deps: SlackDeps) -> None:
    user = _user(body)
    # private_metadata comes back from the client: read strictly, then re-checked.
    ticket_id = _ticket(view.get("private_metadata"), INVALID_FORM)
    detail = _detail(view)
    added = requester.add_detail(session, ticket_id=ticket_id, user_id=user, text=detail)
    owed = flows.enqueue_detail_for_holder(session, added, detail)
    ack()
    deps.background.try_submit(flows.after_detail, deps.runtime, deps.client, ticket_id,
                               redecide=added.redecide, owed=owed, user_id=user,
                               is_admin=deps.is_admin(user), figures=deps.home)


def withdraw(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user = _user(body)
    ticket = requester.withdraw(session, ticket_id=_ticket(action.get("value"), INVALID_BUTTON),
                                user_id=user)
    ticket_id = ticket.ticket_id
    ack()
    deps.background.try_submit(flows.after_withdraw, deps.runtime, deps.client, ticket_id, user_id=user,
                               is_admin=deps.is_admin(user), figures=deps.home)


def _user(body: dict) -> str:
    user = (body.get("user") or {}).get("id")
    return user if isinstance(user, str) else ""


def _ticket(value: Any, refusal: str) -> int:
    try:
        return views.parse_ticket_value(value)
    except ValueError:
        log.warning("refused a requester's click or form with a malformed ticket value")
        raise InvalidInput(refusal) from None


def _detail(view: dict) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(BlockId.DETAIL_TEXT) or {}
    detail = (values.get(ActionId.DETAIL_TEXT) or {}).get("value")
    # A missing or non-text value is the domain's to refuse, like an empty one.
    return detail if isinstance(detail, str) else ""


def register(routes: Routes) -> None:
    routes.action(ActionId.MY_ADD_DETAIL.value)(start_detail)
    routes.action(ActionId.MY_WITHDRAW.value)(withdraw)
    routes.view(CallbackId.ADD_DETAIL.value)(submit_detail)
