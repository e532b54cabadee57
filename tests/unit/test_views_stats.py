"""`/resolution-stats` and the App Home tab."""

from __future__ import annotations

from bot.domain.analytics import TeamStats
from bot.views import home_view, stats_blocks
from tests.support import view_samples as s


def test_stats_show_the_figures():
    blocks = stats_blocks(s.stats())
    shown = s.all_text(blocks)
    assert "Resolution stats for the last 30 days" in shown
    assert "*Success rate*\n75%" in shown
    assert "*Average rating*\n4.2 / 5 (4 ratings)" in shown
    for label, value in [("Resolutions", 10), ("Confirmed", 6), ("Failed", 2), ("Pending", 2),
                         ("Reopened", 2), ("Withdrawn", 1)]:
        assert f"*{label}*\n{value}" in shown
    assert "Since 2024-04-02 09:30 UTC" in shown
    s.assert_within_limits(blocks)


def test_stats_tables_per_action_type_and_team():
    shown = s.all_text(stats_blocks(s.stats()))
    lines = shown.splitlines()
    auto = next(line for line in lines if line.startswith("AUTO_RESOLVE"))
    assert auto.split() == ["AUTO_RESOLVE", "11", "11", "88%", "1"]
    escalate = next(line for line in lines if line.startswith("ESCALATE"))
    assert escalate.split() == ["ESCALATE", "3", "2", "n/a", "0"]
    network = next(line for line in lines if line.startswith("Network"))
    assert network.split() == ["Network", "8", "6", "4", "1", "80%", "4.5"]
    desk = next(line for line in lines if line.startswith("Service Desk"))
    assert desk.split()[-2:] == ["n/a", "n/a"]


def test_stats_with_no_answers_say_so():
    blocks = stats_blocks(
        s.stats(success_rate=None, average_rating=None, ratings=0, by_action_type=(), by_team=())
    )
    shown = s.all_text(blocks)
    assert "*Success rate*\nno answers yet" in shown
    assert "*Average rating*\nno ratings yet" in shown
    assert "None" not in shown
    assert "No actions in this window" in shown


def test_many_teams_fit_one_section():
    teams = tuple(
        TeamStats(f"Team <&> number {n} with a rather long name", n, n, 0, 0, None, None)
        for n in range(400)
    )
    blocks = stats_blocks(s.stats(by_team=teams, days=1))
    s.assert_within_limits(blocks)
    shown = s.all_text(blocks)
    assert "the last day" in shown
    assert "more teams" in shown
    assert "&lt;&amp;&gt;" in shown


def test_table_columns_line_up_despite_escaping():
    teams = (TeamStats("R&D", 1, 1, 1, 0, 1.0, 5.0), TeamStats("Network", 2, 2, 2, 0, 1.0, 5.0))
    shown = s.all_text(stats_blocks(s.stats(by_team=teams)))
    rows = [line for line in shown.splitlines() if line.startswith(("R&amp;D", "Network"))]
    widths = {len(line.replace("&amp;", "&")) for line in rows}
    assert len(widths) == 1


def test_home_view_is_a_home_tab():
    view = home_view(s.stats(), is_admin=False)
    assert view["type"] == "home"
    s.assert_within_limits(view["blocks"], max_blocks=100)
    shown = s.all_text(view["blocks"])
    assert "/ticket" in shown and "75%" in shown
    assert "/rollback" not in shown


def test_home_view_for_admins_hints_at_admin_commands():
    shown = s.all_text(home_view(s.stats(), is_admin=True)["blocks"])
    assert "/rollback" in shown and "/history" in shown


def test_home_view_without_stats():
    view = home_view(None, is_admin=True)
    assert view["type"] == "home"
    assert "not available" in s.all_text(view["blocks"])
