"""Success per action type, team and confidence bin, CSAT and the 14-day trend, as a
helpdesk lead reads them in /resolution-stats and the App Home."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.success import ConfidenceBin, Csat, Outcomes, SuccessStats, TrendDay
from bot.views import home_view, stats_blocks
from bot.views.success import sparkline, trend_text
from models import ActionType
from tests.support import view_samples as s


def _trend(*pairs):
    """14 days; `pairs` maps a day's index to (confirmed, answered)."""
    start = s.NOW - timedelta(days=14)
    given = dict(pairs)
    return tuple(TrendDay(start + timedelta(days=d), *given.get(d, (0, 0))) for d in range(14))


def _success(**fields):
    values = {
        "since": s.NOW - timedelta(days=30),
        "total": Outcomes("All", 12, confirmed=6, reopened=2, rolled_back=1, unanswered=3),
        "by_action_type": (
            Outcomes(ActionType.AUTO_RESOLVE, 7, confirmed=4, reopened=1, rolled_back=1,
                     unanswered=1),
            Outcomes(ActionType.ESCALATE, 2, confirmed=0, reopened=0, rolled_back=0, unanswered=2),
        ),
        "by_team": (Outcomes("R&D <ops>", 5, confirmed=3, reopened=1, rolled_back=0, unanswered=1),),
        "calibration": (ConfidenceBin(0.9, acts=4, answered=4, confirmed=3, stated=0.94),
                        ConfidenceBin(0.3, acts=2, answered=0, confirmed=0, stated=None)),
        "trend": _trend((0, (1, 1)), (10, (0, 1)), (13, (5, 6))),
        "csat": Csat(satisfied=2, ratings=3),
        "people_csat": Csat(),
    }
    values.update(fields)
    return SuccessStats(**values)


def _lines(shown, first):
    return [line.split() for line in shown.splitlines() if line.startswith(first)]


def test_stats_show_success_per_action_type_team_and_bin():
    blocks = stats_blocks(s.stats(success=_success()))
    s.assert_within_limits(blocks)
    shown = s.all_text(blocks)
    assert "*Actions confirmed*\n75% of 8 answered" in shown
    assert "*CSAT (bot)*\n67% of 3 ratings" in shown
    assert "*CSAT (people)*\nno ratings yet" in shown
    # Action, Acts, Yes, No, Rolled back, Unanswered, Success.
    assert ["AUTO_RESOLVE", "7", "4", "1", "1", "1", "80%"] in _lines(shown, "AUTO_RESOLVE")
    assert ["ESCALATE", "2", "0", "0", "0", "2", "n/a"] in _lines(shown, "ESCALATE")
    assert _lines(shown, "R&amp;D &lt;ops&gt;") == [["R&amp;D", "&lt;ops&gt;", "5", "3", "1", "0",
                                                      "1", "75%"]]
    # Confidence, Acts, Answered, Stated, Confirmed.
    assert _lines(shown, "0.9-1.0") == [["0.9-1.0", "4", "4", "94%", "75%"]]
    assert _lines(shown, "0.3-0.4") == [["0.3-0.4", "2", "0", "n/a", "n/a"]]
    assert "AUTONOMY_THRESHOLD" in shown


def test_the_trend_is_a_sparkline_with_its_ends_in_words():
    text = trend_text(_trend((0, (1, 1)), (10, (0, 1)), (13, (5, 6))))
    assert "`█·········▁··▇`" in text
    assert "from 100% (13 days ago) to 83% (the last 24 hours)" in text


def test_days_without_answers_are_dots_and_no_answers_are_said():
    assert sparkline([None, 0.0, 0.5, 1.0]) == "·▁▅█"
    assert "No answers in the last 14 days" in trend_text(_trend())
    one = trend_text(_trend((12, (1, 2))))
    assert "50% (1 day ago), the only day with answers" in one


def test_home_shows_the_success_figures():
    view = home_view(s.stats(success=_success()), is_admin=False)
    s.assert_within_limits(view["blocks"], max_blocks=100)
    shown = s.all_text(view["blocks"])
    assert "Success by action type" in shown and "Calibration" in shown
    assert "`█·········▁··▇`" in shown


def test_no_success_figures_no_blocks():
    shown = s.all_text(stats_blocks(s.stats()))
    assert "Did the bot's actions work?" not in shown


def test_an_empty_window_says_so():
    empty = _success(total=Outcomes("All"), by_action_type=(), by_team=(), calibration=(),
                     trend=_trend(), csat=Csat())
    shown = s.all_text(stats_blocks(s.stats(success=empty)))
    assert "*Actions confirmed*\nno answers yet" in shown
    assert "No autonomous acts with a confidence in this window" in shown
    assert "None" not in shown
