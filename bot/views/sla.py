"""SLA notices to a team's channel, and the SLA table of `/resolution-stats`.

Duck-typed on bot.domain.sla (Owed, SlaRow). Team names come from agents and settings:
escaped, like every text from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock

from bot.views.common import context, section, team_name, to_dicts
from bot.views.common import table as _table

Blocks = list[dict[str, Any]]

_TARGETS = {"response": "first response", "resolution": "resolution"}


def duration(seconds: float | None) -> str:
    """A number of seconds as people say it: `40s`, `45m`, `3h 20m`, `2d 4h`; `-` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{int(seconds)}s"
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def sla_notice(owed: Any) -> tuple[str, Blocks]:
    """A warning (80% of a target used) or a breach notice for the team's channel.

    Args:
        owed: a bot.domain.sla.Owed.

    Returns:
        The message's text and blocks.
    """
    what = _TARGETS.get(str(owed.target), str(owed.target))
    used = f"{duration(owed.elapsed_s)} of {duration(owed.target_s)}"
    counted = "business hours" if owed.business_hours else "around the clock"
    if str(owed.stage) == "breach":
        icon = ":rotating_light:"
        head = f"Ticket #{owed.ticket_id} missed its {what} target"
    else:
        icon = ":hourglass_flowing_sand:"
        head = f"Ticket #{owed.ticket_id} has used 80% of its {what} target"
    text = f"{head} ({used}, {owed.priority} priority)."
    blocks = [
        section(f"{icon} *{head}*: {used} used ({counted}, waits on the requester left out)."),
        context(f"Team: {team_name(owed.team)} · Priority: {owed.priority} · "
                "Take it from the ticket's notice in this channel."),
    ]
    return text, to_dicts(blocks)


def sla_blocks(rows: Sequence[Any]) -> list[Block]:
    """The SLA table: met and breached targets per team and priority, and the medians.

    Args:
        rows: bot.domain.sla.SlaRow, one per team and priority.
    """
    if not rows:
        return [DividerBlock(), section("*Service levels*\nNo tickets measured against SLA_TARGETS yet.")]
    lines = [
        [str(row.team), str(row.priority), str(row.tickets),
         f"{row.response_met}/{row.response_breached}", duration(row.median_response_s),
         f"{row.resolution_met}/{row.resolution_breached}", duration(row.median_resolution_s)]
        for row in rows
    ]
    table = _table(["Team", "Priority", "Tickets", "Resp ok/late", "Median", "Res ok/late", "Median"],
                   lines, noun="teams")
    return [DividerBlock(),
            section("*Service levels* (met/breached per target; medians of the stopped clocks)\n" + table)]
