"""The "What didn't work?" modal a "No" opens, and the requester's words where they are
shown again (`/resolution-stats`).

Pure builders: the resolution the answer was about rides in `private_metadata` (the
same spelling as the feedback buttons' values, checked again on submit).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block, InputBlock, PlainTextInputElement, PlainTextObject
from slack_sdk.models.views import View

from bot.domain.feedback import REASON_LIMIT
from bot.views.common import section
from bot.views.ids import ActionId, BlockId, CallbackId, feedback_value, person_feedback_value


def feedback_reason_modal(ticket_id: int, *, person_resolution_id: int | None = None,
                          text: str = "") -> dict[str, Any]:
    """The optional "What didn't work?" modal, opened by a No.

    Args:
        ticket_id: the ticket the answer was about.
        person_resolution_id: a person's resolution the No was about (None: the bot's).
        text: what the requester wrote before, shown for them to change.

    Returns:
        A modal view for views.open.
    """
    target = (feedback_value(ticket_id) if person_resolution_id is None
              else person_feedback_value(ticket_id, person_resolution_id))
    field = PlainTextInputElement(
        action_id=ActionId.FEEDBACK_REASON, multiline=True, max_length=REASON_LIMIT,
        initial_value=text[:REASON_LIMIT] or None,
        placeholder=PlainTextObject(text="e.g. The VPN still drops after the reset"),
    )
    blocks: list[Block] = [
        section(f"I've reopened ticket *#{ticket_id}* and a person will follow up. "
                "Telling them what didn't work helps them start in the right place."),
        InputBlock(
            block_id=BlockId.FEEDBACK_REASON, label=PlainTextObject(text="What didn't work?"),
            element=field, optional=True,
            hint=PlainTextObject(text="The helpdesk team sees this with your ticket."),
        ),
    ]
    return View(
        type="modal", callback_id=CallbackId.FEEDBACK_REASON,
        title=PlainTextObject(text="What didn't work?"),
        submit=PlainTextObject(text="Send"), close=PlainTextObject(text="Skip"),
        private_metadata=target, blocks=blocks,
    ).to_dict()
