"""What the requester and the ticket's thread see: the ack, the answer with its
feedback buttons, the follow-up DM, the other actions, and "Why?" (the team's side,
reopen notices included, is bot.views.team).

Pure builders: data in, `(fallback_text, blocks)` out. Every piece of people's or an
agent's text is escaped here, and every block is cut to Slack's limits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.views.common import (
    action_uuid,
    actor,
    bulleted,
    button,
    context,
    fallback,
    fields_section,
    humanize,
    numbered,
    params,
    percent,
    section,
    team_name,
    text_list,
    to_dicts,
    when,
)
from bot.views.escape import clip, mention, quote
from bot.views.ids import (
    ActionId,
    BlockId,
    feedback_value,
    rating_action_id,
    why_value,
)
from models import ActionType, EscalationPriority, as_utc, short_id

STAR = "★"
EMPTY_STAR = "☆"
# How much of the request is quoted back: enough to recognise it, never the whole
# wall of text someone pasted.
_QUOTE_LIMIT = 1000
_ACK_ECHO_LIMIT = 300

Blocks = list[dict[str, Any]]


def ticket_received(ticket_id: int, text: str, *, busy: bool = False,
                    privately: bool = False) -> tuple[str, Blocks]:
    """The immediate ack, sent before the agent has looked at the ticket.

    Args:
        ticket_id: the new ticket's id.
        text: what the requester wrote.
        busy: the bot could not start on it now (too much waiting already): it is
            saved and will be looked at within a few minutes.
        privately: the answer goes to the requester's DM (a /ticket outside the
            helpdesk channels), not to the channel.

    Returns:
        (fallback text, blocks).
    """
    where = ("send you my answer by DM" if privately
             else "post my answer in this channel (or by DM)")
    if busy:
        said = (f":inbox_tray: Got it — ticket *#{ticket_id}* is saved. I'm busy right now, so "
                f"it may take a few minutes before I look at it; I'll {where}.")
        short = f"Got it — ticket #{ticket_id} is saved. I'm busy, so it may take a few minutes."
    else:
        said = (f":inbox_tray: Got it — ticket *#{ticket_id}*. I'm looking into it "
                f"and will {where} in a moment.")
        short = f"Got it — ticket #{ticket_id}. I'm looking into it."
    blocks: list[Block] = [
        section(said, block_id=BlockId.TICKET_ACK),
        context("You wrote: " + clip(" ".join((text or "").split()), _ACK_ECHO_LIMIT)),
    ]
    return fallback(short), to_dicts(blocks)


def saved_while_busy(ticket_id: int) -> str:
    """What a DM or a mention is told when the bot could not start on it at once."""
    return (f"Got it — ticket #{ticket_id} is saved. I'm busy right now, so it may take a few "
            "minutes before I answer here.")


def reply_saved_while_busy(ticket_id: int) -> str:
    """What a reply to the bot's question is told when the bot could not start on it at once."""
    return (f"Got it — I added that to ticket #{ticket_id}. I'm busy right now, so it may take a "
            "few minutes before I answer here.")


def resolution_message(ticket: Any, action: Any, *, ticket_text: str) -> tuple[str, Blocks]:
    """The bot's answer to an auto-resolved ticket, with Why?, Yes/No and stars.

    Args:
        ticket: the Ticket (ticket_id is read).
        action: the AUTO_RESOLVE ActionHistory row (id, confidence, steps).
        ticket_text: the request, quoted back so the answer reads on its own.

    Returns:
        (fallback text, blocks).
    """
    blocks = _answer_blocks(ticket, action, ticket_text)
    blocks += _feedback_buttons(ticket.ticket_id)
    blocks += _rating_buttons(ticket.ticket_id)
    blocks.append(_ticket_context(ticket, action))
    return _answer_fallback(ticket, action), to_dicts(blocks)


def answered_resolution_message(ticket: Any, action: Any, resolution: Any) -> tuple[str, Blocks]:
    """The answer again, with the buttons replaced by what the requester said.

    Used to update the message in place after a click, so nobody clicks twice and
    everyone in the thread sees the outcome. Questions not answered yet keep their
    buttons (a "No" can still be rated).

    Args:
        ticket: the Ticket.
        action: the AUTO_RESOLVE ActionHistory row.
        resolution: the TicketResolution (resolution_confirmed, satisfaction_score),
            or None when there is none.

    Returns:
        (fallback text, blocks).
    """
    blocks = _answer_blocks(ticket, action, ticket.description)
    confirmed = getattr(resolution, "resolution_confirmed", None)
    score = getattr(resolution, "satisfaction_score", None)
    if getattr(action, "rolled_back", False):
        # A withdrawn answer asks for nothing more.
        blocks.append(section(":leftwards_arrow_with_hook: An admin withdrew this answer."))
        blocks.append(_ticket_context(ticket, action))
        return _answer_fallback(ticket, action), to_dicts(blocks)
    if confirmed is True:
        blocks.append(
            section(":white_check_mark: You said this solved it.", block_id=BlockId.FEEDBACK_RESULT)
        )
    elif confirmed is False:
        blocks.append(
            section(
                ":x: You said it did not — reopened for "
                f"*{team_name(ticket.assigned_team)}*.",
                block_id=BlockId.FEEDBACK_RESULT,
            )
        )
    else:
        blocks += _feedback_buttons(ticket.ticket_id)
    if isinstance(score, int) and 1 <= score <= 5:
        blocks.append(
            section(
                f"Rated {score}/5 {STAR * score}{EMPTY_STAR * (5 - score)}",
                block_id=BlockId.RATING_RESULT,
            )
        )
    else:
        blocks += _rating_buttons(ticket.ticket_id)
    blocks.append(_ticket_context(ticket, action))
    return _answer_fallback(ticket, action), to_dicts(blocks)


def followup_dm(ticket: Any, action: Any, *, now: datetime | None = None) -> tuple[str, Blocks]:
    """The one follow-up DM for an answer nobody said anything about.

    Args:
        ticket: the Ticket.
        action: the AUTO_RESOLVE ActionHistory row.
        now: the clock reading, to say "Yesterday" or "Earlier today" correctly
            whatever FOLLOWUP_DELAY is; without it the DM says "Earlier".

    Returns:
        (fallback text, blocks) with the same Yes/No and star buttons.
    """
    tid = ticket.ticket_id
    lead = since_phrase(getattr(action, "executed_at", None), now)
    steps = text_list(params(action).get("steps"))
    blocks: list[Block] = [
        section(
            f":wave: {lead} I suggested a fix for ticket *#{tid}*:\n"
            + quote(ticket.description or "", _QUOTE_LIMIT)
        ),
    ]
    if steps:
        blocks.append(section("*What I suggested:*\n" + numbered(steps), block_id=BlockId.ANSWER))
    blocks += _feedback_buttons(tid, question="*Did it solve it?*")
    blocks += _rating_buttons(tid)
    blocks.append(_ticket_context(ticket, action))
    text = f"{lead} I suggested a fix for ticket #{tid}. Did it solve it?"
    return fallback(text), to_dicts(blocks)


def action_thread_message(ticket: Any, action: Any) -> tuple[str, Blocks]:
    """What the bot did with a ticket, for the ticket's thread.

    Covers ESCALATE, ASSIGN_TO_TEAM (with the suggested answer for the team),
    REQUEST_CLARIFICATION and human triage; AUTO_RESOLVE gets the full answer.

    Args:
        ticket: the Ticket.
        action: the ActionHistory row just executed.

    Returns:
        (fallback text, blocks).
    """
    kind = getattr(action, "action_type", "")
    if kind == ActionType.AUTO_RESOLVE:
        return resolution_message(ticket, action, ticket_text=ticket.description or "")
    tid = ticket.ticket_id
    p = params(action)
    team = team_name(p.get("team") or ticket.assigned_team)
    blocks: list[Block] = []
    if p.get("triage"):
        reason = clip(str(p.get("reason") or "the bot did not act on its own"), 1500)
        summary = f"A person from {team} will pick this up: {reason}"
        blocks.append(
            section(f":busts_in_silhouette: A person from *{team}* will pick this up: {reason}")
        )
        suggestion = p.get("suggestion")
        if isinstance(suggestion, dict) and suggestion.get("action_type"):
            blocks.append(
                context(
                    f"The bot's suggestion, not applied: {humanize(suggestion['action_type'])} "
                    f"({percent(_confidence(suggestion.get('confidence')))})"
                )
            )
    elif kind == ActionType.ESCALATE:
        priority = humanize(p.get("priority") or ticket.escalation_priority or EscalationPriority.MEDIUM)
        summary = f"Escalated to {team} (priority {priority})."
        blocks.append(
            section(
                f":rotating_light: Escalated to *{team}* (priority {priority}).\n"
                "A person will follow up in this thread."
            )
        )
    elif kind == ActionType.ASSIGN_TO_TEAM:
        summary = f"Assigned to {team}."
        blocks.append(section(f":clipboard: Assigned to *{team}*."))
        steps = text_list(p.get("steps"))
        if p.get("suggested_answer") and steps:
            blocks.append(section("*Suggested answer for the team:*\n" + numbered(steps)))
    elif kind == ActionType.REQUEST_CLARIFICATION:
        summary = "I need a bit more detail to help with this. Reply in this thread."
        questions = text_list(p.get("questions"))
        body = f":question: I need a bit more detail to help with ticket *#{tid}*."
        if questions:
            body += "\n" + bulleted(questions)
        blocks.append(section(body))
        blocks.append(context("Reply in this thread."))
    else:
        summary = f"{humanize(kind)} recorded."
        blocks.append(section(f"{humanize(kind)} recorded for ticket *#{tid}*."))
    blocks.append(_confidence_section(action))
    blocks.append(_ticket_context(ticket, action))
    return fallback(f"Ticket #{tid}: {summary}"), to_dicts(blocks)


def reasoning_message(action: Any) -> tuple[str, Blocks]:
    """The "Why?" ephemeral: confidence, band, reasoning, who acted and when.

    Args:
        action: the ActionHistory row the button named.

    Returns:
        (fallback text, blocks).
    """
    p = params(action)
    ticket_id = getattr(action, "ticket_id", "?")
    kind = humanize(getattr(action, "action_type", None))
    confidence = percent(_confidence(getattr(action, "confidence_score", None)))
    reasoning = getattr(action, "agent_reasoning", "") or "No reasoning was recorded."
    blocks: list[Block] = [
        section(f":mag: *Why I did this* — {kind} on ticket *#{ticket_id}*"),
        fields_section(
            [
                ("Confidence", confidence),
                ("Band", humanize(p.get("band")) if p.get("band") else "—"),
                ("Executed by", actor(getattr(action, "executed_by", None))),
                ("When", when(getattr(action, "executed_at", None))),
            ]
        ),
        section("*Reasoning:*\n" + clip(reasoning, 2900)),
    ]
    if getattr(action, "rolled_back", False):
        blocks.append(context(_rolled_back_line(action)))
    blocks.append(context(f"Action `{short_id(getattr(action, 'id', None))}`"))
    text = f"Why: {kind}, confidence {confidence}. {clip(reasoning, 500)}"
    return fallback(text), to_dicts(blocks)


def _answer_blocks(ticket: Any, action: Any, ticket_text: str) -> list[Block]:
    p = params(action)
    steps = text_list(p.get("steps"))
    answer = "*Try this:*\n" + numbered(steps) if steps else "I marked this as resolved."
    if p.get("estimated_time"):
        answer += f"\n_Takes about {clip(str(p['estimated_time']), 100)}._"
    return [
        section(
            f":bulb: I think I can fix ticket *#{ticket.ticket_id}*. You asked:\n"
            + quote(ticket_text or "", _QUOTE_LIMIT)
        ),
        section(answer, block_id=BlockId.ANSWER),
        _confidence_section(action),
    ]


def _confidence_section(action: Any) -> Block:
    confidence = _confidence(getattr(action, "confidence_score", None))
    return section(
        f"Confidence: *{percent(confidence)}*",
        block_id=BlockId.CONFIDENCE,
        accessory=button("Why?", ActionId.WHY, why_value(action_uuid(action))),
    )


def _feedback_buttons(ticket_id: int, *, question: str = "*Did this solve it?*") -> list[Block]:
    return feedback_blocks(feedback_value(ticket_id), question=question)


def _rating_buttons(ticket_id: int) -> list[Block]:
    return rating_blocks(lambda n: feedback_value(ticket_id, score=n))


def feedback_blocks(value: str, *, question: str = "*Did this solve it?*") -> list[Block]:
    """The "did this solve it?" question and its Yes/No buttons, carrying `value`.

    Shared by the bot's answers and people's resolutions, so both are asked alike.
    """
    return [
        section(question),
        ActionsBlock(
            block_id=BlockId.FEEDBACK,
            elements=[
                button("Yes, it's fixed", ActionId.FEEDBACK_YES, value, style="primary"),
                button("No, still broken", ActionId.FEEDBACK_NO, value),
            ],
        ),
    ]


def rating_blocks(value_of: Callable[[int], str]) -> list[Block]:
    """The 1-5 star buttons; `value_of(n)` is the value of the n-star button."""
    return [
        context("How helpful was this answer?"),
        ActionsBlock(
            block_id=BlockId.RATING,
            elements=[
                button(STAR * n, rating_action_id(n), value_of(n), label=f"Rate {n} out of 5")
                for n in range(1, 6)
            ],
        ),
    ]


def _ticket_context(ticket: Any, action: Any) -> Block:
    return context(
        f"Ticket #{ticket.ticket_id} · action `{short_id(getattr(action, 'id', None))}`",
        block_id=BlockId.TICKET_CONTEXT,
    )


def _answer_fallback(ticket: Any, action: Any) -> str:
    steps = text_list(params(action).get("steps"))
    first = f": {clip(steps[0], 200)}" if steps else ""
    return fallback(f"Ticket #{ticket.ticket_id}: here is a fix to try{first}. Did this solve it?")


def _rolled_back_line(action: Any) -> str:
    reason = getattr(action, "rollback_reason", "") or ""
    by = getattr(action, "rolled_back_by", None)
    line = (
        f":leftwards_arrow_with_hook: Rolled back by {mention(by) if by else 'an admin'} "
        f"at {when(getattr(action, 'rolled_back_at', None))}"
    )
    return line + (f" ({clip(reason, 300)})" if reason.strip() else "")


def _confidence(value: Any) -> float | None:
    # A suggestion's confidence comes from stored JSON: trust only a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def since_phrase(executed_at: datetime | None, now: datetime | None) -> str:
    """How a follow-up DM says when the answer was given: "Earlier today", "Yesterday"."""
    if executed_at is None or now is None:
        return "Earlier"
    # Calendar days in UTC: 23:00 -> 09:00 the next morning is "yesterday".
    days = (as_utc(now).date() - as_utc(executed_at).date()).days
    if days <= 0:
        return "Earlier today"
    if days == 1:
        return "Yesterday"
    return f"On {when(executed_at)[:10]}"
