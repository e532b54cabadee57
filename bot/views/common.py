"""Small pieces every view uses: block constructors that respect Slack's limits, and
the way confidences, times and actors are written (an action's short id is
`models.short_id`, shared with the rollback rules).

Every mrkdwn object is `verbatim`: Slack then does no automatic parsing of plain
text (auto-linked channel names, "certain mentions"), so only the `<…>` we write
ourselves can become a link or a mention.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.basic_objects import _class_validator_names
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.views.escape import (
    BUTTON_TEXT_LIMIT,
    CONTEXT_TEXT_LIMIT,
    ELLIPSIS,
    FALLBACK_TEXT_LIMIT,
    HEADER_TEXT_LIMIT,
    SECTION_FIELD_LIMIT,
    SECTION_TEXT_LIMIT,
    escape,
    mention,
    truncate,
)
from models import Actor, as_utc

NONE_SHOWN = "—"


def md(text: str, limit: int = SECTION_TEXT_LIMIT) -> MarkdownTextObject:
    """A verbatim mrkdwn text object, cut to `limit` (Slack rejects empty text)."""
    return MarkdownTextObject(text=truncate(text or " ", limit), verbatim=True)


def section(
    text: str, *, block_id: str | None = None, accessory: ButtonElement | None = None
) -> SectionBlock:
    """A section of mrkdwn text (already escaped by the caller where needed)."""
    return SectionBlock(text=md(text), block_id=block_id, accessory=accessory)


def fields_section(
    pairs: Sequence[tuple[str, str]], *, block_id: str | None = None
) -> SectionBlock:
    """A section of up to ten "*label*\\nvalue" fields (Slack's maximum)."""
    fields = [md(f"*{label}*\n{value}", SECTION_FIELD_LIMIT) for label, value in pairs[:10]]
    return SectionBlock(fields=fields, block_id=block_id)


def context(*texts: str, block_id: str | None = None) -> ContextBlock:
    """A context line (small grey text); at most ten elements, as Slack allows."""
    return ContextBlock(elements=[md(t, CONTEXT_TEXT_LIMIT) for t in texts[:10]], block_id=block_id)


def header(text: str) -> HeaderBlock:
    """A header; never built from people's text (plain_text is not escaped by Slack)."""
    return HeaderBlock(text=PlainTextObject(text=truncate(text, HEADER_TEXT_LIMIT), emoji=True))


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    label: str | None = None,
) -> ButtonElement:
    """A button with a label cut to Slack's 75 characters.

    Args:
        text: what the button shows (our own words, never people's text).
        action_id: what the handler binds to.
        value: what the click sends back.
        style: "primary", "danger" or None.
        label: what screen readers say, when the text alone is unclear ("★★★").
    """
    return ButtonElement(
        text=PlainTextObject(text=truncate(text, BUTTON_TEXT_LIMIT), emoji=True),
        action_id=str(action_id),
        value=value,
        style=style,
        accessibility_label=truncate(label, BUTTON_TEXT_LIMIT) if label else None,
    )


def to_dicts(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    """Serialize blocks as `to_dict` does, running slack_sdk's validators (which raise
    on a limit), without its per-object reflection for the blocks our builders make."""
    return [_to_dict(block) for block in blocks]


# What slack_sdk's `JsonObject.to_dict` does, for these classes: run the class's
# validators, then keep the non-empty attributes, children serialized alike. slack_sdk
# finds both by reflection on every object (`dir`, an `attributes` set built per call):
# most of the CPU of drawing a message (a follow-up DM with the NPS question: about 50
# objects, 1-2 ms). Here they are looked up once per class. Any other class, or one whose
# serialization these classes' subclasses change, goes through `to_dict` itself;
# tests/unit/test_views_serialize.py checks that both give the same dicts.
_FAST_CLASSES = frozenset({SectionBlock, ContextBlock, ActionsBlock, DividerBlock, HeaderBlock,
                           ButtonElement, MarkdownTextObject, PlainTextObject})
_PLANS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _to_dict(obj: Any) -> Any:
    cls: type = type(obj)
    plan = _PLANS.get(cls)
    if plan is None:
        if cls not in _FAST_CLASSES:
            return obj.to_dict()
        plan = _PLANS[cls] = (tuple(sorted(_class_validator_names(cls))), tuple(sorted(obj.attributes)))
    validators, attributes = plan
    for name in validators:
        getattr(obj, name)()
    out: dict[str, Any] = {}
    for key in attributes:
        value = getattr(obj, key, None)
        if value is None or (hasattr(value, "__len__") and len(value) == 0):
            continue  # slack_sdk leaves out None and empty values alike
        out[key] = _compatible(value)
    return out


def _compatible(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_compatible(item) for item in value]
    if type(value) in _FAST_CLASSES:
        return _to_dict(value)
    if callable(getattr(value, "to_dict", None)):
        return value.to_dict()  # another slack_sdk object: its own serialization
    return value


def fallback(text: str) -> str:
    """A message's top-level `text` (notifications, screen readers), kept short."""
    return truncate(" ".join(text.split()), FALLBACK_TEXT_LIMIT)


def action_uuid(action: Any) -> uuid.UUID:
    """The action's id; views are built from flushed rows, which always have one.

    Raises:
        ValueError: the row has no id yet (built before a flush).
    """
    value = getattr(action, "id", None)
    if not isinstance(value, uuid.UUID):
        raise ValueError("the action has no id yet: flush it before rendering")
    return value


def percent(confidence: float | None) -> str:
    """A confidence 0..1 as "92%", or "n/a" when there is none (human triage)."""
    return "n/a" if confidence is None else f"{confidence:.0%}"


def when(moment: datetime | None) -> str:
    """A timestamp in UTC, minutes precision ("2024-05-01 14:03 UTC").

    Not `<!date^…>`: that is a `<!` sequence, and keeping every `<!` out of our
    output lets tests prove none came from people's text.
    """
    if moment is None:
        return "unknown time"
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def actor(executed_by: str | None) -> str:
    """Who did an action, for people: the agent, the system, or a mention."""
    if not executed_by or executed_by == Actor.AGENT:
        return "autonomous agent"
    if executed_by == Actor.SYSTEM:
        return "system"
    return mention(executed_by)


def params(action: Any) -> dict[str, Any]:
    """The action's parameters, {} when missing or malformed."""
    value = getattr(action, "action_params", None)
    return value if isinstance(value, dict) else {}


def text_list(value: Any) -> list[str]:
    """A list of strings from a parameter that should be one (steps, questions)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if not isinstance(value, list | tuple):
        return []
    return [str(item) for item in value if str(item).strip()]


def numbered(items: Sequence[str]) -> str:
    """Escaped items as a numbered mrkdwn list."""
    return "\n".join(f"{n}. {escape(item)}" for n, item in enumerate(items, 1))


def bulleted(items: Sequence[str]) -> str:
    """Escaped items as a bulleted mrkdwn list."""
    return "\n".join(f"• {escape(item)}" for item in items)


def team_name(team: Any) -> str:
    """A team name (it may come from an HTTP agent), escaped; a default when unset."""
    return escape(str(team)) if team else "the helpdesk"


def humanize(value: Any) -> str:
    """A snake_case or UPPER_CASE code as words ("very_low" -> "very low")."""
    return escape(str(value).replace("_", " ")) if value is not None else NONE_SHOWN


CELL_WIDTH = 24
# Leave room for the title line and the "… and N more" note under the table.
TABLE_BUDGET = SECTION_TEXT_LIMIT - 200


def table(headings: Sequence[str], rows: Sequence[Sequence[str]], *, noun: str) -> str:
    """A fixed-width table in a code block, cut to fit one section.

    Widths are measured on the raw text and each cell escaped afterwards: `&amp;`
    shows as one character, so measuring escaped text would misalign the columns.
    """
    cells = [[cell_text(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headings)]

    def line(row: Sequence[str]) -> str:
        first = escape(row[0]) + " " * (widths[0] - len(row[0]))
        rest = [" " * (w - len(c)) + escape(c) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    lines = [line(headings)]
    used = len(lines[0]) + len("```\n\n```")
    shown = 0
    for row in cells:
        text = line(row)
        if used + len(text) + 1 > TABLE_BUDGET:
            break
        lines.append(text)
        used += len(text) + 1
        shown += 1
    out = "```\n" + "\n".join(lines) + "\n```"
    if shown < len(cells):
        out += f"\n{ELLIPSIS} and {len(cells) - shown} more {noun}"
    return out


def cell_text(value: str) -> str:
    # One line per row, no cell so wide that the table wraps, and no backtick to
    # close the code block early.
    value = " ".join(value.replace("`", "'").split()) or "-"
    return value if len(value) <= CELL_WIDTH else value[: CELL_WIDTH - 1] + ELLIPSIS
