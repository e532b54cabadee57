"""The requester's side: tickets from a message, and their own tickets in App Home.

Pure builders. People's text (a ticket's request, what they add) is escaped here.
Duck-typed on models.Ticket (ticket_id, user_id, issue_type, description, status,
assigned_team, assigned_to, escalation_priority).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.views import View

from bot.views.common import button, context, section
from bot.views.escape import clip, mention, quote
from bot.views.ids import ActionId, BlockId, CallbackId, ticket_value
from models import TicketStatus

# What the Add detail field accepts (bot.domain.requester.MAX_DETAIL).
DETAIL_LIMIT = 3000
_SUMMARY_LIMIT = 150
_MODAL_QUOTE_LIMIT = 1500
_MY_TICKET_BLOCK = "my_ticket_"

_STATE = {
    TicketStatus.NEW: "received; I'm looking at it",
    TicketStatus.AWAITING_USER: "waiting for more detail from you",
    TicketStatus.OPEN: "waiting for a person",
    TicketStatus.IN_PROGRESS: "in progress",
    TicketStatus.ESCALATED: "escalated",
}


def opened_from_message(ticket: Any, *, reporter_id: str | None) -> str:
    """Said in the message's thread when a reaction or the shortcut opened its ticket."""
    who = "" if not reporter_id or reporter_id == ticket.user_id else f"{mention(reporter_id)} asked: "
    return (f":ticket: {who}I've opened ticket #{ticket.ticket_id} for {mention(ticket.user_id)} "
            "from this message. I'll answer in this thread.")


def message_has_ticket(ticket_id: int) -> str:
    """Told (ephemerally) to someone asking again for a message that has its ticket."""
    return f"This message has ticket #{ticket_id} already; I'm answering in its thread."


def my_tickets_blocks(tickets: Sequence[Any], *, total: int) -> list[Block]:
    """App Home's "Your open tickets": each with its state, who has it, and its
    Add detail and Withdraw buttons.

    Args:
        tickets: the requester's open tickets, newest first.
        total: how many open tickets they have (more than shown: "and N more").
    """
    if not tickets:
        return [section("*Your open tickets*\nYou have no open tickets.")]
    blocks: list[Block] = [section("*Your open tickets*")]
    for ticket in tickets:
        blocks.append(section(
            f"*#{ticket.ticket_id}* {clip(ticket.issue_type or ticket.description or '', _SUMMARY_LIMIT)}\n"
            f"{state_of(ticket)} · {holder_of(ticket)}"
        ))
        blocks.append(ActionsBlock(block_id=f"{_MY_TICKET_BLOCK}{ticket.ticket_id}",
                                   elements=_my_buttons(ticket.ticket_id)))
    if total > len(tickets):
        blocks.append(context(f"… and {total - len(tickets)} more, older."))
    return blocks


def state_of(ticket: Any) -> str:
    """Where a ticket stands, in the requester's words."""
    state = _STATE.get(ticket.status, str(ticket.status).replace("_", " "))
    if ticket.status == TicketStatus.ESCALATED and ticket.escalation_priority:
        state += f" ({clip(str(ticket.escalation_priority), 20)} priority)"
    return state[:1].upper() + state[1:]


def holder_of(ticket: Any) -> str:
    """Who has the ticket: a person, a team's queue, or the bot."""
    if ticket.assigned_to:
        return f"{mention(ticket.assigned_to)} has it"
    if ticket.assigned_team:
        return f"with {clip(str(ticket.assigned_team), 100)}; nobody has taken it yet"
    return "with me (the bot)"


def add_detail_modal(ticket: Any) -> dict[str, Any]:
    """The modal the requester writes more detail in; the ticket rides in
    `private_metadata` (checked again on submit)."""
    hint = ("A person has your ticket: they will see this." if ticket.assigned_to
            else "I'll look at your ticket again with this.")
    blocks: list[Block] = [
        section(f"Ticket *#{ticket.ticket_id}*:\n" + quote(ticket.description or "", _MODAL_QUOTE_LIMIT)),
        InputBlock(
            block_id=BlockId.DETAIL_TEXT,
            label=PlainTextObject(text="What else should we know?"),
            element=PlainTextInputElement(
                action_id=ActionId.DETAIL_TEXT, multiline=True, max_length=DETAIL_LIMIT,
                placeholder=PlainTextObject(text="e.g. the exact error message, since when, what you tried"),
            ),
            hint=PlainTextObject(text=hint),
        ),
    ]
    return View(
        type="modal", callback_id=CallbackId.ADD_DETAIL, title=PlainTextObject(text="Add detail"),
        submit=PlainTextObject(text="Add"), close=PlainTextObject(text="Cancel"),
        private_metadata=ticket_value(ticket.ticket_id), blocks=blocks,
    ).to_dict()


def detail_for_holder(ticket: Any, detail: str) -> str:
    """The DM to the person who has a ticket when its requester adds detail."""
    return (f"{mention(ticket.user_id)} added detail to ticket #{ticket.ticket_id}, which you have:\n"
            + quote(detail, _MODAL_QUOTE_LIMIT))


def _my_buttons(ticket_id: int) -> list[ButtonElement]:
    value = ticket_value(ticket_id)
    withdraw = button("Withdraw", ActionId.MY_WITHDRAW, value, style="danger")
    withdraw.confirm = ConfirmObject(
        title="Withdraw this ticket?",
        text=f"Ticket #{ticket_id} will be closed and nobody will work on it.",
        confirm="Withdraw", deny="Keep it", style="danger",
    )
    return [button("Add detail", ActionId.MY_ADD_DETAIL, value), withdraw]
