"""Alert messages for the alerts channels, and the words alert texts are made of.

Duck-typed on bot.workflows.alerts.Notice (rule, kind, text). Pure: no database, no Slack.
The helpers `span` and `pct` live here so the rules in bot.workflows.alerts and the blocks
describe windows and rates in the same words.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from bot.views.common import context, header, section, to_dicts, when
from bot.views.escape import escape
from models import AlertRule

Blocks = list[dict[str, Any]]


class NoticeKind(enum.StrEnum):
    """What an alert post says about its rule."""

    FIRING = "firing"  # a new breach
    REPEAT = "repeat"  # still breached, the cooldown has passed since the last post
    RESOLVED = "resolved"  # a firing rule cleared


RULE_TITLES = {
    AlertRule.FAILURE_RATE: "Failure rate",
    AlertRule.LOW_CONFIDENCE: "Low confidence",
    AlertRule.AGENT_ERRORS: "Agent API errors",
    AlertRule.ROLLBACKS: "Rollbacks",
    AlertRule.AUTONOMY_CAP: "Autonomy cap reached",
    AlertRule.LIMITER_DOWN: "Autonomy limiter unreachable",
    AlertRule.POSTS_HELD: "Slack messages held",
    AlertRule.BACKUP_FAILED: "Backup failed",
}
_HEADINGS = {
    NoticeKind.FIRING: ":rotating_light: Alert",
    NoticeKind.REPEAT: ":rotating_light: Still firing",
    NoticeKind.RESOLVED: ":white_check_mark: Resolved",
}
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def span(window: timedelta) -> str:
    """A window as people say it: "the last hour", "the last 5 minutes".

    Args:
        window: a positive duration (settings guarantee it).

    Returns:
        The phrase, in the largest unit that divides the window exactly.
    """
    seconds = max(1, int(window.total_seconds()))
    for size, unit in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"the last {unit}" if count == 1 else f"the last {count} {unit}s"
    return f"the last {seconds} seconds"  # unreachable: 1 divides everything


def pct(fraction: float) -> str:
    """A fraction as a percentage, "23%" or "10.5%".

    Whole percentages drop the decimals; others keep up to two, so a rate just over
    a 10% threshold never reads as "10%" next to "threshold 10%".
    """
    return f"{round(fraction * 100, 2):g}%"


def plural(count: int, word: str) -> str:
    """ "1 rollback", "21 rollbacks"."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def notice_text(kind: NoticeKind, message: str, *, since: datetime | None = None) -> str:
    """The text of an alert post: the rule's message, prefixed by what changed.

    Args:
        kind: what the post says about the rule.
        message: the measurement's message.
        since: when the alert first fired (said in a repeat).
    """
    if kind == NoticeKind.REPEAT:
        return f"Still firing since {when(since)}: {message}"
    if kind == NoticeKind.RESOLVED:
        return f"Resolved: {message}"
    return f"Alert: {message}"


def alert_blocks(notice: Any) -> Blocks:
    """The blocks of an alert post: what happened, in a helpdesk lead's words.

    Args:
        notice: a bot.workflows.alerts.Notice (rule, kind, text).

    Returns:
        Blocks: a header naming the rule and whether it fires or cleared, the text,
        and the rule's id (what operators grep the logs and settings for).
    """
    title = RULE_TITLES.get(notice.rule, str(notice.rule).replace("_", " ").capitalize())
    heading = _HEADINGS.get(notice.kind, "Alert")
    # Our own words only, but escaped anyway: a message may one day quote a team name.
    return to_dicts([
        header(f"{heading}: {title}"),
        section(escape(notice.text)),
        context(f"Rule `{escape(str(notice.rule))}` · ResolveMeQ alerting"),
    ])
