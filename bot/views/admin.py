"""What admins see: the rollback confirm step, its result, the ticket's history, and
error messages; plus the notice a rollback leaves in the ticket's thread.

The rollback objects are duck-typed: a preview needs action_id, short_id,
ticket_id, action_type, executed_at, confidence, reasoning and `changes` (or
`diff`); a result is either flat (short_id, ticket_id, action_type, admin_id,
reason, restored) or bot.rollback's RollbackResult (action, rollback, restored).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.views.common import (
    actor,
    button,
    context,
    fallback,
    fields_section,
    header,
    humanize,
    params,
    percent,
    section,
    to_dicts,
    when,
)
from bot.views.escape import MESSAGE_BLOCK_LIMIT, clip, escape, mention, quote
from bot.views.ids import ActionId, BlockId, rollback_value
from bot.views.sla import ticket_sla_blocks
from models import as_utc, short_id

Blocks = list[dict[str, Any]]

_REASONING_IN_HISTORY = 300
_MESSAGE_IN_HISTORY = 600
_VALUE_LIMIT = 100
_NO_REASON = "no reason given"
_ARROW = ":leftwards_arrow_with_hook:"
# Snapshot timestamps are ISO strings; only these are shown as times (fromisoformat
# alone would also read a team called "20240501" as a date).
_ISO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}.*")


def rollback_confirm(preview: Any, *, reason: str = "", two_person: bool = False) -> Blocks:
    """The confirm step of `/rollback`: what the action did and what undoing it changes.

    Args:
        preview: a RollbackPreview (see the module docstring for the fields read).
        reason: the admin's reason, carried in the Confirm button's value.
        two_person: ROLLBACK_APPROVAL=two-person: Confirm asks for approval instead.

    Returns:
        Blocks for an ephemeral message with Confirm (danger) and Cancel.
    """
    action_id: uuid.UUID = preview.action_id
    changes = _changes_of(preview)
    reasoning = getattr(preview, "reasoning", "") or "No reasoning was recorded."
    blocks: list[Block] = [
        header("Roll back this action?"),
        fields_section(
            [
                ("Action", f"`{escape(str(preview.short_id))}`"),
                ("Type", humanize(preview.action_type)),
                ("Ticket", f"#{preview.ticket_id}"),
                ("Confidence", percent(getattr(preview, "confidence", None))),
                ("Executed", when(getattr(preview, "executed_at", None))),
                ("Reason", clip(reason, 500) if reason.strip() else f"_{_NO_REASON}_"),
            ]
        ),
        section("*Reasoning:*\n" + clip(reasoning, 1500)),
        section(
            "*What changes on the ticket* (now → after the rollback):\n" + diff_lines(changes)
            if changes
            else "Nothing on the ticket changes: it already looks as it did before the action."
        ),
    ]
    if two_person:
        blocks.append(context("Rollbacks need a second person here: this asks another admin or an "
                              "approver to approve it. Nothing changes until they do."))
    blocks += [
        ActionsBlock(
            block_id=BlockId.ROLLBACK_CONFIRM,
            elements=[
                button(
                    "Ask for approval" if two_person else "Roll back",
                    ActionId.ROLLBACK_CONFIRM,
                    rollback_value(action_id, reason),
                    style="danger",
                ),
                button("Cancel", ActionId.ROLLBACK_CANCEL, action_id.hex),
            ],
        ),
    ]
    return to_dicts(blocks)


def rollback_done(result: Any) -> tuple[str, Blocks]:
    """The admin's confirmation that the rollback happened.

    Args:
        result: a flat result or a RollbackResult (see the module docstring).

    Returns:
        (fallback text, blocks).
    """
    facts = _facts(result)
    what = f"{humanize(facts.action_type)} `{facts.short_id}` on ticket *#{facts.ticket_id}*"
    blocks: list[Block] = [
        section(f"{_ARROW} *Rolled back* {what}."),
        section(
            "*Restored* (before → now):\n" + diff_lines(facts.restored)
            if facts.restored
            else "Nothing on the ticket needed to change."
        ),
        context(f"By {mention(facts.admin_id)}{_approval(facts.approved_by)} "
                f"· reason: {_reason(facts.reason)}"),
    ]
    text = (
        f"Rolled back {humanize(facts.action_type)} {facts.short_id} "
        f"on ticket #{facts.ticket_id}."
    )
    return fallback(text), to_dicts(blocks)


def rollback_thread_notice(result: Any) -> tuple[str, Blocks]:
    """The notice in the ticket's thread that an admin undid the bot's action.

    Args:
        result: a flat result or a RollbackResult (see the module docstring).

    Returns:
        (fallback text, blocks).
    """
    facts = _facts(result)
    kind = humanize(facts.action_type)
    line = (
        f"An admin {mention(facts.admin_id)} rolled back the bot's {kind}"
        f"{_approval(facts.approved_by)} (reason: {_reason(facts.reason)})."
    )
    blocks: list[Block] = [section(f"{_ARROW} {line}")]
    status = facts.restored.get("status")
    if isinstance(status, tuple | list) and len(status) == 2:
        blocks.append(context(f"Ticket #{facts.ticket_id} is {humanize(status[1])} again."))
    blocks.append(context(f"Ticket #{facts.ticket_id} · action `{facts.short_id}`"))
    return fallback(line), to_dicts(blocks)


_UNREAD: Any = object()  # history_blocks without a service level (not read)


def history_blocks(ticket_id: int, rows: Sequence[Any], *, said: dict[tuple[str, int], str] | None = None,
                   conversation: Sequence[Any] = (), sla: Any = _UNREAD) -> Blocks:
    """The timeline of one ticket for `/history`, newest first: its actions, and what
    the requester added (replies in the thread, detail from App Home).

    Args:
        ticket_id: the ticket.
        rows: its ActionHistory rows, in any order.
        said: what the requester said did not work, by the resolution it was about
            (`("resolution_id", id)` or `("person_resolution_id", id)`); shown under
            the latest reopen of that resolution.
        conversation: its TicketMessage rows (kind, author_id, text, created_at), in
            any order; their text is escaped.
        sla: its service level (a TicketSla row, None when not measured yet); left
            out, no service-level line.

    Returns:
        At most 50 blocks; older entries beyond that are counted, not shown.
    """
    actions = sorted(rows, key=_executed_key, reverse=True)
    ordered = sorted([*actions, *conversation], key=_entry_key, reverse=True)
    # Two-person rollbacks: who approved each, from its ROLLBACK row, for the undone entry.
    approvals = {row.rollback_of: _approved_by(row) for row in actions
                 if getattr(row, "rollback_of", None) is not None and _approved_by(row)}
    blocks: list[Block] = [header(f"History of ticket #{ticket_id}")]
    if sla is not _UNREAD:
        blocks += ticket_sla_blocks(sla)
    if not ordered:
        blocks.append(section(f"No actions are recorded for ticket #{ticket_id}."))
        return to_dicts(blocks)
    room = MESSAGE_BLOCK_LIMIT - len(blocks)
    shown = ordered if len(ordered) <= room else ordered[: room - 1]
    words = _said_at(actions, said or {})
    blocks += [section(_message_entry(row) if _is_message(row)
                       else _history_entry(row, approvals.get(getattr(row, "id", None)))
                       + words.get(id(row), "")) for row in shown]
    hidden = len(ordered) - len(shown)
    if hidden:
        words_for = (("entry", "entries") if any(_is_message(row) for row in ordered[len(shown):])
                     else ("action", "actions"))
        noun = words_for[0] if hidden == 1 else words_for[1]
        blocks.append(context(f"… and {hidden} older {noun}"))
    return to_dicts(blocks)


def _is_message(row: Any) -> bool:
    return hasattr(row, "author_id") and not hasattr(row, "action_type")


def _message_entry(message: Any) -> str:
    """What the requester added, as a timeline entry: who, how, when, and the text quoted."""
    how = ("added detail from App Home" if getattr(message, "kind", None) == "detail"
           else "replied in the thread")
    head = (f":speech_balloon: {mention(getattr(message, 'author_id', '') or '')} {how} · "
            f"{when(getattr(message, 'created_at', None))}")
    return head + "\n" + quote(getattr(message, "text", "") or "", _MESSAGE_IN_HISTORY)


def _entry_key(row: Any) -> datetime:
    moment = getattr(row, "created_at" if _is_message(row) else "executed_at", None)
    return as_utc(moment) if isinstance(moment, datetime) else datetime.min.replace(tzinfo=UTC)


def _said_at(newest_first: Sequence[Any], said: dict[tuple[str, int], str]) -> dict[int, str]:
    """The requester's words, as a line under the latest REOPEN of each resolution."""
    lines: dict[int, str] = {}
    for row in newest_first:
        if getattr(row, "action_type", None) != "REOPEN":
            continue
        found = [(key, ref) for key, ref in params(row).items()
                 if key in ("resolution_id", "person_resolution_id") and isinstance(ref, int)]
        text = said.pop(found[0], "") if found else ""
        if text.strip():
            lines[id(row)] = "\n:speech_balloon: What didn't work: " + clip(" ".join(text.split()), 500)
    return lines


def error_message(text: str) -> Blocks:
    """An ephemeral error: a warning icon and the (escaped) message.

    Error texts may quote what someone typed (an unknown action id), hence escaped.
    """
    return to_dicts([section(f":warning: {clip(text or 'Something went wrong.', 2900)}")])


@dataclass(frozen=True)
class _Facts:
    short_id: str
    ticket_id: Any
    action_type: str
    admin_id: str
    reason: str
    restored: dict[str, Any]
    # Two-person mode: who approved the rollback (admin_id asked for it).
    approved_by: str | None = None


def _facts(result: Any) -> _Facts:
    action = getattr(result, "action", None)
    if action is not None and not hasattr(result, "short_id"):
        # bot.rollback.RollbackResult: the undone action carries who and why.
        record = getattr(result, "rollback", None)
        return _Facts(
            short_id=short_id(action.id),
            ticket_id=action.ticket_id,
            action_type=action.action_type,
            admin_id=action.rolled_back_by or getattr(record, "executed_by", "") or "",
            reason=action.rollback_reason or "",
            restored=dict(getattr(result, "restored", None) or {}),
            approved_by=_approved_by(record),
        )
    return _Facts(
        short_id=escape(str(result.short_id)),
        ticket_id=result.ticket_id,
        action_type=result.action_type,
        admin_id=result.admin_id or "",
        reason=result.reason or "",
        restored=dict(getattr(result, "restored", None) or {}),
        approved_by=getattr(result, "approved_by", None),
    )


def _changes_of(preview: Any) -> dict[str, Any]:
    changes = getattr(preview, "changes", None)
    if changes is None:
        changes = getattr(preview, "diff", None)
    return dict(changes or {})


def diff_lines(changes: dict[str, Any]) -> str:
    """A rollback's changes as bullet lines, "• `field`: old → new" (values escaped)."""
    lines = []
    for field, pair in changes.items():
        old, new = pair if isinstance(pair, tuple | list) and len(pair) == 2 else (None, pair)
        lines.append(f"• `{escape(str(field))}`: {_value(old)} → {_value(new)}")
    return "\n".join(lines)


def _value(value: Any) -> str:
    if value is None or value == "":
        return "_(none)_"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            pass
    return clip(str(value), _VALUE_LIMIT)


def _reason(reason: str) -> str:
    return clip(reason, 500) if reason and reason.strip() else _NO_REASON


def _approved_by(row: Any) -> str | None:
    """Who approved a two-person rollback, from its ROLLBACK row's parameters."""
    approver = params(row).get("approved_by") if row is not None else None
    return approver if isinstance(approver, str) and approver else None


def _approval(approver: str | None) -> str:
    return f" with {mention(approver)}'s approval" if approver else ""


def _history_entry(row: Any, approved_by: str | None = None) -> str:
    kind = getattr(row, "action_type", "?")
    parts = [f"*{humanize(kind)}* `{short_id(getattr(row, 'id', None))}`"]
    confidence = getattr(row, "confidence_score", None)
    if confidence is not None:
        parts.append(percent(confidence))
    parts.append(f"by {actor(getattr(row, 'executed_by', None))}")
    approver = _approved_by(row)
    if approver:
        parts.append(f"approved by {mention(approver)}")
    parts.append(when(getattr(row, "executed_at", None)))
    undone = getattr(row, "rollback_of", None)
    if undone is not None:
        parts.append(f"undoes `{short_id(undone)}`")
    entry = " · ".join(parts)
    reasoning = " ".join((getattr(row, "agent_reasoning", "") or "").split())
    if reasoning:
        entry += "\n> " + clip(reasoning, _REASONING_IN_HISTORY)
    if getattr(row, "rolled_back", False):
        by = getattr(row, "rolled_back_by", None)
        entry += (
            f"\n{_ARROW} *Rolled back* by {mention(by) if by else 'an admin'}{_approval(approved_by)} "
            f"at {when(getattr(row, 'rolled_back_at', None))} "
            f"({_reason(getattr(row, 'rollback_reason', '') or '')})"
        )
    return entry


def _executed_key(row: Any) -> datetime:
    # Rows not yet flushed have no executed_at; they sort as the oldest.
    moment = getattr(row, "executed_at", None)
    return as_utc(moment) if isinstance(moment, datetime) else datetime.min.replace(tzinfo=UTC)
