"""Two-person rollback (ROLLBACK_APPROVAL=two-person): Confirm asks for approval; the
request's Approve and Reject buttons in the approvals channel; the reject modal.

Who may decide is asked of Slack at click time (and again on submit): an admin or an
approver, never the one who asked (for Approve). The decision and the posts it owes
are written in the request's transaction; the ack commits them; then the message in
the approvals channel is redrawn and people are told, off the request path. Refusals
and outages are raised and answered by `handlers.errors` (in the modal, for a
submission).
"""

from __future__ import annotations

import logging
import uuid

from slack_bolt import Ack
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import InvalidInput
from bot.domain import approvals
from bot.views import ActionId, BlockId, CallbackId
from bot.workflows import approvals as approval_notices
from handlers.deps import SlackDeps
from handlers.routing import Routes

log = logging.getLogger(__name__)

INVALID_BUTTON = "That button is not valid any more. Nothing was rolled back."
INVALID_FORM = "This form is not valid any more. Close it and click Reject again."


def ask(ack: Ack, session: Session, deps: SlackDeps, *, user: str, channel: str | None,
        action_id: uuid.UUID, reason: str, response_url: str | None = None) -> None:
    """Confirm in two-person mode: make the request and post it for approval."""
    settings = deps.runtime.settings
    request = approvals.request_rollback(session, ref=action_id.hex, requester_id=user,
                                         is_admin=deps.is_admin(user), reason=reason,
                                         throttle=deps.runtime.rollback_throttle,
                                         ttl=settings.rollback_approval_ttl)
    owed = approval_notices.enqueue_request(session, request, settings)
    ack()
    deps.background.submit(approval_notices.announce_request, deps.runtime, deps.client, request.id, owed,
                           channel=channel, user=user, response_url=response_url)


def approve(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user, channel = _where(body)
    decision = approvals.approve(session, request_id=_request(action.get("value"), INVALID_BUTTON),
                                 approver_id=user, may_approve=deps.may_approve(user),
                                 throttle=deps.runtime.rollback_throttle)
    owed = approval_notices.enqueue_decision(session, decision, deps.runtime.settings)
    ack()
    deps.background.submit(approval_notices.announce_decision, deps.runtime, deps.client, decision, owed,
                           channel=channel, user=user)


def start_reject(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user, channel = _where(body)
    request = approvals.check_may_decide(session, request_id=_request(action.get("value"), INVALID_BUTTON),
                                         user_id=user, may_approve=deps.may_approve(user))
    ack()
    # Here, not on the background executor: the trigger is valid for 3 s from the click.
    approval_notices.open_reject_modal(deps.client, trigger_id=body.get("trigger_id") or "",
                                       request=request, channel=channel, user=user)


def submit_rejection(ack: Ack, body: dict, view: dict, session: Session, deps: SlackDeps) -> None:
    user = _user(body)
    # private_metadata comes back from the client: read strictly, then re-checked.
    request_id = _request(view.get("private_metadata"), INVALID_FORM)
    decision = approvals.reject(session, request_id=request_id, user_id=user, reason=_reason(view),
                                may_approve=deps.may_approve(user))
    owed = approval_notices.enqueue_decision(session, decision, deps.runtime.settings)
    if decision.expired:
        # Committed by this ack: the request is marked expired, and the modal says so.
        ack(response_action="errors",
            errors={BlockId.REJECT_REASON.value: approvals.closed_text(decision.request)})
    else:
        ack()
    deps.background.submit(approval_notices.announce_decision, deps.runtime, deps.client, decision, owed,
                           channel=None, user=user)


def _where(body: dict) -> tuple[str, str | None]:
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
    return _user(body), channel


def _user(body: dict) -> str:
    # No user id is nobody: the roles and the rules refuse "".
    user = (body.get("user") or {}).get("id")
    return user if isinstance(user, str) else ""


def _request(value: object, refusal: str) -> int:
    try:
        return views.parse_request_value(value)
    except ValueError:
        log.warning("refused a rollback approval click or form with a malformed request value")
        raise InvalidInput(refusal) from None


def _reason(view: dict) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(BlockId.REJECT_REASON) or {}
    reason = (values.get(ActionId.REJECT_REASON) or {}).get("value")
    # A missing or non-text reason is the domain's to refuse, like an empty one.
    return reason if isinstance(reason, str) else ""


def register(routes: Routes) -> None:
    routes.action(ActionId.ROLLBACK_APPROVE.value)(approve)
    routes.action(ActionId.ROLLBACK_REJECT.value)(start_reject)
    routes.view(CallbackId.REJECT_ROLLBACK.value)(submit_rejection)
