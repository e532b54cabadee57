"""Two-person rollback in Slack: the request in the approvals channel (with Approve and
Reject, redrawn with the outcome), the reject modal, and what the admin who asked is
told.

A request is duck-typed as models.RollbackRequest (id, action_id, ticket_id,
requested_by, reason, diff, expires_at, status, decided_by, decided_at,
decision_reason); its action gives the type shown.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.views import View

from bot.views.admin import diff_lines
from bot.views.common import (
    button,
    context,
    fallback,
    fields_section,
    header,
    humanize,
    section,
    to_dicts,
    when,
)
from bot.views.escape import clip, mention
from bot.views.ids import ActionId, BlockId, CallbackId, request_value
from models import RequestStatus, short_id

Blocks = list[dict[str, Any]]

REASON_LIMIT = 500
_NO_REASON = "_no reason given_"
_HEADERS = {
    RequestStatus.PENDING: "Rollback approval needed",
    RequestStatus.APPROVED: "Rollback approved",
    RequestStatus.REJECTED: "Rollback request rejected",
    RequestStatus.EXPIRED: "Rollback request expired",
}


def rollback_request_message(request: Any, action: Any) -> tuple[str, Blocks]:
    """The request as the approvals channel shows it: pending with Approve and Reject,
    or its outcome in their place.

    Args:
        request: the RollbackRequest, as it stands now.
        action: the action it would roll back (for its type).

    Returns:
        (fallback text, blocks).
    """
    status = RequestStatus(request.status)
    sid = short_id(request.action_id)
    blocks: list[Block] = [
        header(_HEADERS[status]),
        fields_section([
            ("Action", f"`{sid}`"),
            ("Type", humanize(getattr(action, "action_type", None))),
            ("Ticket", f"#{request.ticket_id}"),
            ("Asked by", mention(request.requested_by)),
            ("Reason", clip(request.reason, REASON_LIMIT) if (request.reason or "").strip() else _NO_REASON),
            ("Expires" if status == RequestStatus.PENDING else "Asked until", when(request.expires_at)),
        ]),
        section(
            "*What changes on the ticket* (now → after the rollback):\n" + diff_lines(request.diff or {})
            if request.diff
            else "Nothing on the ticket changes: it already looks as it did before the action."
        ),
    ]
    if status == RequestStatus.PENDING:
        value = request_value(request.id)
        blocks += [
            ActionsBlock(block_id=BlockId.APPROVAL_ACTIONS, elements=[
                button("Approve", ActionId.ROLLBACK_APPROVE, value, style="primary"),
                button("Reject", ActionId.ROLLBACK_REJECT, value, style="danger"),
            ]),
            context(f"Another admin or a rollback approver must approve it; {mention(request.requested_by)} "
                    f"cannot. Request #{request.id}, until {when(request.expires_at)}."),
        ]
        text = (f"Rollback approval needed: {humanize(getattr(action, 'action_type', None))} {sid} "
                f"on ticket #{request.ticket_id}, asked by {mention(request.requested_by)}.")
    else:
        line = outcome_line(request)
        blocks.append(section(line, block_id=BlockId.APPROVAL_OUTCOME))
        text = f"Rollback request #{request.id} ({sid}, ticket #{request.ticket_id}): {status.value}."
    return fallback(text), to_dicts(blocks)


def outcome_line(request: Any) -> str:
    """One line saying how a decided request ended (who, when, and a rejection's why)."""
    status = RequestStatus(request.status)
    if status == RequestStatus.APPROVED:
        return (f":white_check_mark: *Approved* by {mention(request.decided_by)} at "
                f"{when(request.decided_at)}: action `{short_id(request.action_id)}` is rolled back "
                f"(asked by {mention(request.requested_by)}).")
    if status == RequestStatus.REJECTED:
        return (f":x: *Rejected* by {mention(request.decided_by)} at {when(request.decided_at)}: "
                f"{clip(request.decision_reason or '', REASON_LIMIT)}. Nothing was rolled back.")
    if status == RequestStatus.EXPIRED:
        return (f":hourglass: *Expired* at {when(request.expires_at)}: nobody approved it in time. "
                "Nothing was rolled back.")
    return f"Waiting for approval until {when(request.expires_at)}."


def reject_modal(request: Any) -> dict[str, Any]:
    """The modal for a rejection's reason; the request rides in `private_metadata`
    (checked again on submit).

    Args:
        request: the RollbackRequest.

    Returns:
        A modal view for views.open.
    """
    blocks: list[Block] = [
        section(f"Reject rollback request *#{request.id}* (action `{short_id(request.action_id)}` on "
                f"ticket *#{request.ticket_id}*), asked by {mention(request.requested_by)}."),
        InputBlock(
            block_id=BlockId.REJECT_REASON,
            label=PlainTextObject(text="Why reject it?"),
            element=PlainTextInputElement(action_id=ActionId.REJECT_REASON, multiline=True,
                                          max_length=REASON_LIMIT),
            hint=PlainTextObject(text="The admin who asked reads this. Nothing is rolled back."),
        ),
    ]
    return View(
        type="modal",
        callback_id=CallbackId.REJECT_ROLLBACK,
        title=PlainTextObject(text="Reject rollback"),
        submit=PlainTextObject(text="Reject"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=request_value(request.id),
        blocks=blocks,
    ).to_dict()


def request_sent(request: Any, channel: str) -> tuple[str, Blocks]:
    """The asking admin's word that the request is waiting (ephemeral).

    Args:
        request: the new RollbackRequest.
        channel: where it waits (a channel id).
    """
    text = (f"Asked for approval in <#{channel}>: rollback request #{request.id} of action "
            f"`{short_id(request.action_id)}` on ticket #{request.ticket_id}. Another admin or an approver "
            f"must approve it by {when(request.expires_at)}; nothing is rolled back until then.")
    return fallback(text), to_dicts([section(text)])


def request_outcome_dm(request: Any) -> tuple[str, Blocks]:
    """What the admin who asked is told when their request is decided or expires (DM)."""
    line = outcome_line(request)
    intro = (f"Your rollback request #{request.id} (action `{short_id(request.action_id)}` on ticket "
             f"#{request.ticket_id}):")
    text = f"{intro} {RequestStatus(request.status).value}."
    return fallback(text), to_dicts([section(f"{intro}\n{line}")])
