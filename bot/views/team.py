"""What a team sees in its channel: a ticket that needs a person, with **Take it** and
**Resolve**, and the modal a resolution note is written in.

Pure builders. A notice shows who asked, the request (escaped, cut with an ellipsis
to fit its section), the bot's suggestion with its confidence, and, at its end, who
has the ticket and the buttons; `redraw_team_notice` replaces only that end, so a
notice keeps what it said when it was posted and shows what is happening now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.views import View

from bot.domain.teamwork import NOTE_LIMIT
from bot.views.common import (
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
)
from bot.views.escape import SECTION_TEXT_LIMIT, clip, mention, quote, truncate
from bot.views.ids import ActionId, BlockId, CallbackId, reopened_block_id, ticket_value
from models import ActionType, short_id

Blocks = list[dict[str, Any]]

_REQUEST_LABEL = "*The request:*\n"
_REPLIES_LABEL = "*The requester added, when asked:*\n"
_MODAL_QUOTE_LIMIT = 1500


class NoticeKind(StrEnum):
    """Why a ticket is in the team's channel."""

    ROUTED = "routed"  # ASSIGN_TO_TEAM
    ESCALATED = "escalated"  # ESCALATE
    TRIAGE = "triage"  # the bot did not act alone
    REOPENED = "reopened"  # the requester said the resolution did not solve it
    ROLLED_BACK = "rolled_back"  # an admin undid an action: a person must pick it up


@dataclass(frozen=True)
class NoticeState:
    """Where the ticket stands now, drawn at the end of every notice about it."""

    holder: str | None = None  # the Slack user id of who has it
    resolved: bool = False
    resolved_by: str | None = None  # a person who resolved it (None: the bot, or nobody)
    note: str = ""
    withdrawn: bool = False  # closed by the person who asked: nobody is to work on it


def team_notice(
    ticket: Any, *, kind: NoticeKind, team: str | None, action: Any = None, reason: str = "",
    state: NoticeState = NoticeState(), person_resolution_id: int | None = None,
    replies: Sequence[str] = (),
) -> tuple[str, Blocks]:
    """A ticket that needs the team: what was asked (and what the requester added when
    the bot asked for detail), what the bot made of it, and the Take it / Resolve buttons.

    Args:
        ticket: the Ticket (ticket_id, user_id, description, escalation_priority).
        kind: why it is posted.
        team: the team it is for.
        action: the action behind the notice: the routing or escalation, the resolution
            that did not work (REOPENED), or the action rolled back (ROLLED_BACK).
        reason: why a person is needed (TRIAGE), the admin's reason (ROLLED_BACK), or
            what the requester said did not work (REOPENED).
        state: who has it now.
        person_resolution_id: REOPENED: the person's resolution the "No" was about
            (None: the bot's); named in the headline's block id (`reopened_block_id`),
            so what the requester says about it later reaches this notice.
        replies: the requester's replies to the bot's questions, oldest first.

    Returns:
        (fallback text, blocks).
    """
    tid = ticket.ticket_id
    shown_team = team_name(team)
    headline, summary = _headline(kind, tid, shown_team, action, reason)
    facts = [("Requester", mention(ticket.user_id)), ("Team", shown_team)]
    priority = params(action).get("priority") or getattr(ticket, "escalation_priority", None)
    if kind in (NoticeKind.ESCALATED, NoticeKind.TRIAGE) and priority:
        facts.append(("Priority", humanize(priority)))
    headline_id = reopened_block_id(tid, person_resolution_id) if kind == NoticeKind.REOPENED else None
    blocks: list[Block] = [
        section(headline, block_id=headline_id),
        fields_section(facts),
        section(_REQUEST_LABEL + quote(ticket.description or "", SECTION_TEXT_LIMIT - len(_REQUEST_LABEL))),
    ]
    added = [text for text in replies if text and text.strip()]
    if added:
        # Each reply its own quote, so the team reads the conversation as it went.
        room = SECTION_TEXT_LIMIT - len(_REPLIES_LABEL)
        share = max(room // len(added) - 2, 40)
        blocks.append(section(_REPLIES_LABEL + truncate("\n\n".join(quote(text, share) for text in added),
                                                        room)))
    blocks += [section(_suggestion(kind, action))]
    if kind == NoticeKind.REOPENED and reason.strip():
        blocks.append(_requester_said(reason))
    blocks += _work_blocks(tid, state)
    return fallback(f"Ticket #{tid} {summary}"), to_dicts(blocks)


def with_requester_said(blocks: Blocks, text: str) -> Blocks:
    """A reopen notice's blocks with what the requester said did not work, in place of
    what they said before (none when `text` is blank), just above the notice's end.

    Args:
        blocks: the notice as posted (from `team_notice`).
        text: the requester's words, as typed (escaped here).

    Returns:
        The new blocks.
    """
    kept = [block for block in blocks if block.get("block_id") != BlockId.REQUESTER_SAID]
    if not text.strip():
        return kept
    end = {BlockId.TEAM_STATE.value, BlockId.TEAM_ACTIONS.value, BlockId.TEAM_HINT.value}
    at = next((i for i, block in enumerate(kept) if block.get("block_id") in end), len(kept))
    return kept[:at] + to_dicts([_requester_said(text)]) + kept[at:]


def is_reopen_notice_of(blocks: Any, ticket_id: int, person_resolution_id: int | None) -> bool:
    """Whether posted blocks are the reopen notice of this "No" (see `team_notice`)."""
    wanted = reopened_block_id(ticket_id, person_resolution_id)
    return isinstance(blocks, list) and any(
        isinstance(block, dict) and block.get("block_id") == wanted for block in blocks
    )


def _requester_said(text: str) -> Block:
    return section("*The requester said:*\n" + quote(text, SECTION_TEXT_LIMIT - 40),
                   block_id=BlockId.REQUESTER_SAID)


def redraw_team_notice(blocks: Blocks, *, ticket_id: int, state: NoticeState) -> Blocks:
    """A posted notice's blocks with its end (who has it, the buttons) drawn for `state`.

    Args:
        blocks: the notice as posted (from `team_notice`).
        ticket_id: its ticket.
        state: where the ticket stands now.

    Returns:
        The same blocks up to the end, then the end for `state`.
    """
    mine = {BlockId.TEAM_STATE.value, BlockId.TEAM_ACTIONS.value, BlockId.TEAM_HINT.value}
    kept = [block for block in blocks if block.get("block_id") not in mine]
    return kept + to_dicts(_work_blocks(ticket_id, state))


def is_team_notice(blocks: Any) -> bool:
    """Whether posted blocks are a team notice (they carry its buttons' block)."""
    return isinstance(blocks, list) and any(
        isinstance(block, dict) and block.get("block_id") == BlockId.TEAM_ACTIONS for block in blocks
    )


def resolve_modal(ticket: Any) -> dict[str, Any]:
    """The modal a team member writes the resolution note in.

    The ticket rides in `private_metadata` (checked again on submit).

    Args:
        ticket: the Ticket (ticket_id, user_id, description).

    Returns:
        A modal view for views.open.
    """
    blocks: list[Block] = [
        section(
            f"Ticket *#{ticket.ticket_id}* from {mention(ticket.user_id)}:\n"
            + quote(ticket.description or "", _MODAL_QUOTE_LIMIT)
        ),
        InputBlock(
            block_id=BlockId.RESOLUTION_NOTE,
            label=PlainTextObject(text="What did you do?"),
            element=PlainTextInputElement(
                action_id=ActionId.RESOLUTION_NOTE,
                multiline=True,
                max_length=NOTE_LIMIT,
                placeholder=PlainTextObject(text="e.g. Reset the VPN profile and re-enrolled the laptop"),
            ),
            hint=PlainTextObject(
                text="The requester gets this note and is asked whether it solved the problem."
            ),
        ),
    ]
    return View(
        type="modal",
        callback_id=CallbackId.RESOLVE_TICKET,
        title=PlainTextObject(text="Resolve ticket"),
        submit=PlainTextObject(text="Resolve"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=ticket_value(ticket.ticket_id),
        blocks=blocks,
    ).to_dict()


def _headline(kind: NoticeKind, tid: int, team: str, action: Any, reason: str) -> tuple[str, str]:
    """(the first section, the fallback after "Ticket #N")."""
    if kind == NoticeKind.ROUTED:
        return f":clipboard: *Ticket #{tid} routed to {team}*", f"routed to {team}"
    if kind == NoticeKind.ESCALATED:
        return f":rotating_light: *Ticket #{tid} escalated to {team}*", f"escalated to {team}"
    if kind == NoticeKind.TRIAGE:
        why = clip(reason or "the bot did not act on its own", 1500)
        return f":busts_in_silhouette: *Ticket #{tid} needs a person*: {why}", "needs a person"
    if kind == NoticeKind.REOPENED:
        by = getattr(action, "executed_by", None) if _is(action, ActionType.RESOLVE) else None
        whose = f"{mention(by)}'s resolution" if by else "the bot's answer"
        return (f":repeat: *Ticket #{tid} reopened*: the requester said {whose} did not solve it.",
                "reopened: the requester said it did not solve it")
    what = _undone(action)
    why = clip(reason, 500) if reason.strip() else "no reason given"
    return (f":leftwards_arrow_with_hook: *Ticket #{tid} needs a person*: an admin rolled back "
            f"{what} ({why}).", f"needs a person: an admin rolled back {what} ({why})")


def _suggestion(kind: NoticeKind, action: Any) -> str:
    p = params(action)
    if kind == NoticeKind.REOPENED and _is(action, ActionType.RESOLVE):
        note = str(getattr(action, "agent_reasoning", "") or "")
        return "*What was done*, which did not solve it:\n" + quote(note, SECTION_TEXT_LIMIT - 60)
    if kind == NoticeKind.TRIAGE:
        kept = p.get("suggestion")
        if not isinstance(kept, dict) or not kept.get("action_type"):
            return "_The bot has no suggestion for this one._"
        lead = (f"*The bot's suggestion, not applied:* {humanize(kept['action_type'])} "
                f"(confidence *{percent(_number(kept.get('confidence')))}*)")
        return _with_steps(lead, text_list(_params_of(kept).get("steps")))
    if action is None or _is(action, ActionType.TAKE) or _is(action, ActionType.RESOLVE):
        return "_The bot has no suggestion for this one._"
    confidence = percent(_number(getattr(action, "confidence_score", None)))
    if kind == NoticeKind.REOPENED:
        lead = f"*What the bot suggested* (confidence *{confidence}*), which did not solve it:"
    else:
        lead = f"*The bot's suggestion* (confidence *{confidence}*):"
    return _with_steps(lead, text_list(p.get("steps")))


def _with_steps(lead: str, steps: list[str]) -> str:
    if not steps:
        return lead + " no steps to suggest."
    return truncate(lead + "\n" + numbered(steps), SECTION_TEXT_LIMIT)


def _work_blocks(ticket_id: int, state: NoticeState) -> list[Block]:
    """The notice's end: who has it, and the buttons while it is not resolved."""
    blocks: list[Block] = []
    if state.withdrawn:
        blocks.append(section(":no_entry_sign: *Withdrawn by the person who asked.* "
                              "Nobody needs to work on it.", block_id=BlockId.TEAM_STATE))
        return blocks
    if state.resolved:
        who = f" by {mention(state.resolved_by)}" if state.resolved_by else ""
        text = f":white_check_mark: *Resolved{who}.*"
        if state.note.strip():
            text += "\n" + quote(state.note, SECTION_TEXT_LIMIT - 200)
        blocks.append(section(text, block_id=BlockId.TEAM_STATE))
        return blocks
    if state.holder:
        blocks.append(section(f":raising_hand: {mention(state.holder)} has it.",
                              block_id=BlockId.TEAM_STATE))
    value = ticket_value(ticket_id)
    blocks.append(ActionsBlock(
        block_id=BlockId.TEAM_ACTIONS,
        elements=[
            # Someone has it: taking it is taking it over from them (recorded as such).
            button("Take over" if state.holder else "Take it", ActionId.TEAM_TAKE, value,
                   style=None if state.holder else "primary"),
            button("Resolve", ActionId.TEAM_RESOLVE, value),
        ],
    ))
    blocks.append(context(f"Ticket #{ticket_id} · team members and helpdesk admins can take or "
                          "resolve it", block_id=BlockId.TEAM_HINT))
    return blocks


def _undone(action: Any) -> str:
    kind = getattr(action, "action_type", None)
    if kind == ActionType.TAKE:
        return f"{mention(getattr(action, 'executed_by', ''))}'s take"
    if kind == ActionType.RESOLVE:
        return f"{mention(getattr(action, 'executed_by', ''))}'s resolution"
    return f"the bot's {humanize(kind)} `{short_id(getattr(action, 'id', None))}`"


def _is(action: Any, kind: ActionType) -> bool:
    return getattr(action, "action_type", None) == kind


def _params_of(value: dict) -> dict:
    """A stored suggestion's parameters ({} when missing or malformed)."""
    inner = value.get("params")
    return inner if isinstance(inner, dict) else {}


def _number(value: Any) -> float | None:
    # Confidences come from stored JSON: trust only a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
