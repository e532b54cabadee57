"""A follow-up DM that asks about several resolutions, and the NPS question.

SURVEY_COOLDOWN folds the follow-ups a person is owed within it into one DM
(bot.domain.surveys); each resolution keeps the blocks and buttons of its own
follow-up (the same Yes/No and stars, carrying the same values, so a click works as
on a DM of its own), in the order they fell due, a divider between them. Slack wants
block ids unique within a message: the first resolution's keep today's ids, the
others' get a suffix naming their resolution. An answered resolution shows what the
person said, as the single follow-up does once answered.

Pure builders: data in, `(fallback_text, blocks)` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock

from bot.domain.surveys import NPS_QUESTION
from bot.views.common import button, context, fallback, section, to_dicts
from bot.views.ids import BlockId, nps_action_id, nps_value
from bot.views.person_resolution import answered_person_resolution_message, person_followup_dm
from bot.views.ticket import answered_resolution_message, followup_dm

Blocks = list[dict[str, Any]]

# Slack's limit on blocks in one message.
MAX_BLOCKS = 50


def followup_digest(items: Sequence[Any], *, nps_dm: int | None = None, nps_score: int | None = None,
                    now: datetime | None = None) -> tuple[str, Blocks]:
    """The follow-up DM for `items` (bot.domain.surveys.Item), with the NPS question
    when `nps_dm` (the DM's outbox row) is given.

    One item and no NPS question: exactly the single follow-up DM (or its answered
    form), as without SURVEY_COOLDOWN.

    Args:
        items: the resolutions the DM asks about, oldest first (at least one).
        nps_dm: the outbox row that posted the DM, when it asks NPS.
        nps_score: the person's NPS answer so far.
        now: the clock reading, to say "Yesterday" or "Earlier today".

    Returns:
        (fallback text, blocks); may exceed MAX_BLOCKS (see `fits`).
    """
    if not items:
        raise ValueError("a follow-up DM asks about at least one resolution")
    drawn = [_item(item, now) for item in items]
    text = drawn[0][0]
    blocks: Blocks = []
    if len(drawn) > 1:
        text = fallback(f"Checking in on {len(drawn)} of your tickets: did they solve it?")
        blocks.append(section(f":wave: Checking in on *{len(drawn)}* of your tickets. "
                              "Each has its own buttons.").to_dict())
    for index, (item, (_, item_blocks)) in enumerate(zip(items, drawn, strict=True)):
        if index:
            blocks.append(DividerBlock().to_dict())
            item_blocks = [_suffixed(block, _key(item)) for block in item_blocks]
        blocks += item_blocks
    if nps_dm is not None:
        blocks += nps_blocks(nps_dm, nps_score)
    return text, blocks


def fits(items: Sequence[Any], *, nps_dm: int | None = None, now: datetime | None = None) -> bool:
    """Whether one message holds the DM for `items` (Slack allows MAX_BLOCKS blocks)."""
    return len(followup_digest(items, nps_dm=nps_dm, now=now)[1]) <= MAX_BLOCKS


def nps_blocks(outbox_id: int, score: int | None) -> Blocks:
    """The NPS question with its 0-10 buttons; once answered, the answer under it (a
    different number changes it)."""
    blocks: list[Block] = [
        DividerBlock(),
        section(f"*One more question, asked now and then:* {NPS_QUESTION}",
                block_id=BlockId.NPS_QUESTION),
        ActionsBlock(block_id=BlockId.NPS, elements=[
            button(str(n), nps_action_id(n), nps_value(outbox_id, n),
                   style="primary" if n == score else None,
                   label=f"{n} out of 10") for n in range(11)]),
    ]
    if score is None:
        blocks.append(context("0 = not at all likely · 10 = extremely likely · optional"))
    else:
        blocks.append(context(f"You answered *{score}*/10. Thank you! Pick another number to change it."))
    return to_dicts(blocks)


def _item(item: Any, now: datetime | None) -> tuple[str, Blocks]:
    resolution, action = item.resolution, item.action
    withdrawn = action is not None and bool(getattr(action, "rolled_back", False))
    answered = (resolution.resolution_confirmed is not None
                or resolution.satisfaction_score is not None or withdrawn)
    if item.person:
        if answered:
            return answered_person_resolution_message(item.ticket, resolution, withdrawn=withdrawn)
        return person_followup_dm(item.ticket, resolution, now=now)
    if answered or action is None:
        return answered_resolution_message(item.ticket, action, resolution)
    return followup_dm(item.ticket, action, now=now)


def _key(item: Any) -> str:
    return f"{'p' if item.person else 't'}{item.resolution.id}"


def _suffixed(block: dict[str, Any], key: str) -> dict[str, Any]:
    if "block_id" not in block:
        return block
    return {**block, "block_id": f"{block['block_id']}~{key}"}
