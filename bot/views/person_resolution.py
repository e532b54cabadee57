"""What the requester sees when a person from the team works their ticket: who took
it, and a person's resolution in the same Yes/No and 1-5 stars message as the bot's
answer (and the same follow-up DM), so people's and the bot's resolutions are
measured alike.

Pure builders: data in, `(fallback_text, blocks)` out. The buttons carry the person's
resolution (`person_feedback_value`), so the answer lands on its own record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block

from bot.views.common import context, fallback, section, team_name, to_dicts
from bot.views.escape import clip, mention, quote
from bot.views.ids import BlockId, person_feedback_value
from bot.views.ticket import EMPTY_STAR, STAR, feedback_blocks, rating_blocks, since_phrase

Blocks = list[dict[str, Any]]

_QUOTE_LIMIT = 1000
_NOTE_LIMIT = 2800


def taken_notice(ticket: Any, *, holder: str, team: str | None) -> tuple[str, Blocks]:
    """For the requester: a person from the team is on their ticket.

    Args:
        ticket: the Ticket.
        holder: the Slack user id of who took it.
        team: their team.

    Returns:
        (fallback text, blocks).
    """
    tid = ticket.ticket_id
    line = f"{mention(holder)} from *{team_name(team)}* is on your ticket *#{tid}*."
    blocks: list[Block] = [section(f":raising_hand: {line}"), context(f"Ticket #{tid}")]
    return fallback(f"{mention(holder)} from {team_name(team)} is on your ticket #{tid}."), to_dicts(blocks)


def person_resolution_message(ticket: Any, resolution: Any) -> tuple[str, Blocks]:
    """A person's resolution, for the requester: the note, Yes/No and the stars.

    Args:
        ticket: the Ticket (ticket_id, description).
        resolution: the PersonResolution (id, resolved_by, team, note).

    Returns:
        (fallback text, blocks).
    """
    blocks = _resolution_blocks(ticket, resolution)
    blocks += feedback_blocks(person_feedback_value(ticket.ticket_id, resolution.id))
    blocks += _stars(ticket, resolution)
    blocks.append(_context(ticket, resolution))
    return _fallback(ticket, resolution), to_dicts(blocks)


def answered_person_resolution_message(
    ticket: Any, resolution: Any, *, withdrawn: bool = False
) -> tuple[str, Blocks]:
    """The resolution again, with the buttons replaced by what the requester said.

    Questions not answered yet keep their buttons (a "No" can still be rated).

    Args:
        ticket: the Ticket.
        resolution: the PersonResolution (resolution_confirmed, satisfaction_score).
        withdrawn: an admin rolled the resolution back: nothing more is asked.

    Returns:
        (fallback text, blocks).
    """
    blocks = _resolution_blocks(ticket, resolution)
    if withdrawn:
        blocks.append(section(":leftwards_arrow_with_hook: An admin withdrew this resolution."))
        blocks.append(_context(ticket, resolution))
        return _fallback(ticket, resolution), to_dicts(blocks)
    confirmed = getattr(resolution, "resolution_confirmed", None)
    score = getattr(resolution, "satisfaction_score", None)
    if confirmed is True:
        blocks.append(section(":white_check_mark: You said this solved it.",
                              block_id=BlockId.FEEDBACK_RESULT))
    elif confirmed is False:
        blocks.append(section(
            f":x: You said it did not — reopened for *{team_name(ticket.assigned_team)}*.",
            block_id=BlockId.FEEDBACK_RESULT))
    else:
        blocks += feedback_blocks(person_feedback_value(ticket.ticket_id, resolution.id))
    if isinstance(score, int) and 1 <= score <= 5:
        blocks.append(section(f"Rated {score}/5 {STAR * score}{EMPTY_STAR * (5 - score)}",
                              block_id=BlockId.RATING_RESULT))
    else:
        blocks += _stars(ticket, resolution)
    blocks.append(_context(ticket, resolution))
    return _fallback(ticket, resolution), to_dicts(blocks)


def person_followup_dm(ticket: Any, resolution: Any, *, now: datetime | None = None) -> tuple[str, Blocks]:
    """The one follow-up DM for a person's resolution nobody said anything about.

    Args:
        ticket: the Ticket.
        resolution: the PersonResolution.
        now: the clock reading, to say "Yesterday" or "Earlier today".

    Returns:
        (fallback text, blocks) with the same Yes/No and star buttons.
    """
    tid = ticket.ticket_id
    lead = since_phrase(getattr(resolution, "created_at", None), now)
    who = mention(resolution.resolved_by)
    blocks: list[Block] = [
        section(f":wave: {lead} {who} resolved your ticket *#{tid}*:\n"
                + quote(ticket.description or "", _QUOTE_LIMIT)),
        section("*What was done:*\n" + quote(resolution.note or "", _NOTE_LIMIT), block_id=BlockId.ANSWER),
    ]
    blocks += feedback_blocks(person_feedback_value(tid, resolution.id), question="*Did it solve it?*")
    blocks += _stars(ticket, resolution)
    blocks.append(_context(ticket, resolution))
    return fallback(f"{lead} {who} resolved your ticket #{tid}. Did it solve it?"), to_dicts(blocks)


def _resolution_blocks(ticket: Any, resolution: Any) -> list[Block]:
    who = mention(resolution.resolved_by)
    return [
        section(
            f":white_check_mark: {who} from *{team_name(resolution.team)}* resolved your ticket "
            f"*#{ticket.ticket_id}*. You asked:\n" + quote(ticket.description or "", _QUOTE_LIMIT)
        ),
        section("*What was done:*\n" + quote(resolution.note or "", _NOTE_LIMIT), block_id=BlockId.ANSWER),
    ]


def _stars(ticket: Any, resolution: Any) -> list[Block]:
    return rating_blocks(lambda n: person_feedback_value(ticket.ticket_id, resolution.id, score=n))


def _context(ticket: Any, resolution: Any) -> Block:
    return context(f"Ticket #{ticket.ticket_id} · resolved by {mention(resolution.resolved_by)}",
                   block_id=BlockId.TICKET_CONTEXT)


def _fallback(ticket: Any, resolution: Any) -> str:
    note = " ".join((resolution.note or "").split()).rstrip(".")
    return fallback(f"Ticket #{ticket.ticket_id} was resolved: {clip(note, 200)}. Did this solve it?")
