"""SLA notices to a team's channel, and the SLA table of `/resolution-stats`.

Duck-typed on bot.domain.sla (Owed, SlaRow). Team names come from agents and settings:
escaped, like every text from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock

from bot.views.common import context, section, team_name, to_dicts, when
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


def ticket_sla_blocks(row: Any | None) -> list[Block]:
    """A ticket's service level for `/history`: each target met, breached or running
    (how much of it is used), as the check_sla job last measured it.

    Args:
        row: the ticket's bot.domain.sla TicketSla row, or None (not measured yet).
    """
    if row is None:
        return [section("*Service level*: not measured yet (the SLA job measures new tickets "
                        "within a minute).")]
    lines = [
        _target_line("First response", row.response_s, row.response_target_s, row.elapsed_s,
                     row.response_warned_at, row.response_breached_at),
        _target_line("Resolution", row.resolution_s, row.resolution_target_s, row.elapsed_s,
                     row.resolution_warned_at, row.resolution_breached_at),
    ]
    return [
        section(f"*Service level* · {row.priority} priority · {team_name(row.team)}\n" + "\n".join(lines)),
        context(f"Measured {when(row.updated_at)}; business time, waits on the requester left out."),
    ]


def _target_line(name: str, took: int | None, target: int, elapsed: int, warned: Any, breached: Any) -> str:
    if took is not None:
        if took <= target and breached is None:
            return f":white_check_mark: {name}: met in {duration(took)} (target {duration(target)})"
        return f":rotating_light: {name}: breached, took {duration(took)} (target {duration(target)})"
    used = f"{duration(elapsed)} of {duration(target)} used"
    if breached is not None or elapsed > target:
        return f":rotating_light: {name}: breached, still open ({used})"
    left = f"due in {duration(target - elapsed)}"
    if warned is not None:
        return f":hourglass_flowing_sand: {name}: over 80% used, {left} ({used})"
    return f":stopwatch: {name}: running, {left} ({used})"
