"""Whether the bot's actions worked, in `/resolution-stats` and the App Home: CSAT, the
14-day trend as a sparkline, success per action type and team, and calibration.

Duck-typed on bot.domain.success.SuccessStats. Slack draws no charts, so the trend is a
line of Unicode blocks (▁ for 0% up to █ for 100%, · for a day without answers) with
its first and last values in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from bot.views.common import context, fields_section, percent, section

SPARKS = "▁▂▃▄▅▆▇█"
NO_ANSWER_DAY = "·"
NO_RATINGS = "no ratings yet"


def success_blocks(success: Any | None) -> list[Block]:
    """The success figures, or nothing when there are none (stats built by hand).

    Args:
        success: a SuccessStats, or None.

    Returns:
        Blocks: CSAT, the trend, and tables per action type, team and confidence bin.
    """
    if success is None:
        return []
    return [
        section("*Did the bot's actions work?*"),
        fields_section([
            ("Actions confirmed", _share(success.total)),
            ("CSAT (bot)", csat_text(success.csat)),
            ("CSAT (people)", csat_text(success.people_csat)),
            ("NPS", nps_text(getattr(success, "nps", None))),
        ]),
        section(trend_text(success.trend)),
        section(_outcomes_table("*Success by action type*", "Action", success.by_action_type,
                                noun="action types")),
        section(_outcomes_table("*Success by team*", "Team", success.by_team, noun="teams")),
        section(_calibration(success.calibration)),
        context(
            "Yes = the requester confirmed; No = answered No or reopened; Rolled back = undone "
            "by an admin, whatever the answer; Unanswered = none of those yet. Escalations, "
            "assignments and questions count the answer to the ticket's later resolution. "
            "Success = Yes / (Yes + No). CSAT = the share of 4 and 5 star ratings. "
            "NPS = % promoters (9-10) minus % detractors (0-6) of the answers to "
            "\"How likely are you to recommend the helpdesk?\"."
        ),
    ]


NO_NPS = "no answers yet"


def nps_text(nps: Any) -> str:
    """ "+25 from 8 answers (4 promoters, 2 detractors)", or that there are none."""
    if nps is None or not nps.answered:
        return NO_NPS
    noun = "answer" if nps.answered == 1 else "answers"
    return (f"{nps.score:+.0f} from {nps.answered} {noun} "
            f"({nps.promoters} promoters, {nps.detractors} detractors)")


def csat_text(csat: Any) -> str:
    """ "80% of 5 ratings", or that there are none."""
    if not csat.ratings:
        return NO_RATINGS
    return f"{percent(csat.share)} of {csat.ratings} {'rating' if csat.ratings == 1 else 'ratings'}"


def sparkline(rates: Sequence[float | None]) -> str:
    """One mark per day: ▁ (0%) to █ (100%), · for a day without answers."""
    return "".join(
        NO_ANSWER_DAY if rate is None else SPARKS[round(rate * (len(SPARKS) - 1))] for rate in rates
    )


def trend_text(trend: Sequence[Any]) -> str:
    """The daily success rate over the trend's days, oldest first, with its ends in words."""
    days = len(trend)
    title = f"*Success rate, last {days} days* (one mark a day, oldest first)"
    answered = [(i, day) for i, day in enumerate(trend) if day.answered]
    if not answered:
        return f"{title}\nNo answers in the last {days} days."
    line = sparkline([day.success_rate for day in trend])
    (first_i, first), (last_i, last) = answered[0], answered[-1]
    words = (f"from {percent(first.success_rate)} ({_ago(days, first_i)}) "
             f"to {percent(last.success_rate)} ({_ago(days, last_i)})")
    if first_i == last_i:
        words = f"{percent(last.success_rate)} ({_ago(days, last_i)}), the only day with answers"
    return f"{title}\n`{line}` {words}"


def _ago(days: int, index: int) -> str:
    back = days - 1 - index
    if back == 0:
        return "the last 24 hours"
    return "1 day ago" if back == 1 else f"{back} days ago"


def _share(row: Any) -> str:
    if row.success_rate is None:
        return "no answers yet"
    return f"{percent(row.success_rate)} of {row.answered} answered"


def _outcomes_table(title: str, first: str, rows: Sequence[Any], *, noun: str) -> str:
    from bot.views.stats import _table  # stats renders these blocks: imported when used

    if not rows:
        return f"{title}\nNo actions in this window."
    table = [
        (str(r.name), str(r.actions), str(r.confirmed), str(r.reopened), str(r.rolled_back),
         str(r.unanswered), "n/a" if r.success_rate is None else percent(r.success_rate))
        for r in rows
    ]
    headings = (first, "Acts", "Yes", "No", "Rolled back", "Unanswered", "Success")
    return f"{title}\n" + _table(headings, table, noun=noun)


def _calibration(bins: Sequence[Any]) -> str:
    from bot.views.stats import _table

    title = ("*Calibration of autonomous acts* (stated confidence beside the share "
             "confirmed, to set AUTONOMY_THRESHOLD on evidence)")
    if not bins:
        return f"{title}\nNo autonomous acts with a confidence in this window."
    table = [
        (f"{b.low:.1f}-{b.low + 0.1:.1f}", str(b.acts), str(b.answered),
         "n/a" if b.stated is None else percent(b.stated),
         "n/a" if b.confirmed_share is None else percent(b.confirmed_share))
        for b in bins
    ]
    headings = ("Confidence", "Acts", "Answered", "Stated", "Confirmed")
    return f"{title}\n" + _table(headings, table, noun="bins")
