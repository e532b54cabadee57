"""The success figures as a helpdesk lead reads them: a /ticket the bot resolved, the
requester's Yes and five stars, then /resolution-stats and the App Home (signed
requests through the in-process Bolt app)."""

from __future__ import annotations

from sqlalchemy import select

from bot.views import ActionId, feedback_value, rating_action_id
from models import Ticket
from tests.support.harness import REQUESTER, VPN, shown, wait_until


def _resolved_and_rated(bolt, slack, sessions) -> None:
    answer = bolt.command("/ticket", VPN)
    assert answer.status_code == 200, answer.text
    [post] = slack.wait_for("chat.postMessage")

    def answered():
        with sessions() as session:
            ticket = session.scalars(select(Ticket)).one()
            return ticket if ticket.slack_message_ts else None

    ticket = wait_until(answered, what="the bot's answer")
    ts = post.response["ts"]
    bolt.click(ActionId.FEEDBACK_YES, feedback_value(ticket.ticket_id), message_ts=ts)
    bolt.click(rating_action_id(5), feedback_value(ticket.ticket_id, score=5), message_ts=ts)
    bolt.settled()


def _row(text: str, first: str) -> list[str]:
    # The success table's row (7 columns), not the per-type counts above it.
    [line] = [line.split() for line in text.splitlines()
              if line.startswith(first) and len(line.split()) == 7]
    return line


def test_stats_show_the_confirmed_resolution_its_bin_trend_and_csat(bolt, slack, committing_factory):
    _resolved_and_rated(bolt, slack, committing_factory)

    said = bolt.command("/resolution-stats", "7").json()
    text = shown(said)
    assert "*Actions confirmed*\n100% of 1 answered" in text
    assert "*CSAT (bot)*\n100% of 1 rating" in text
    assert _row(text, "AUTO_RESOLVE") == ["AUTO_RESOLVE", "1", "1", "0", "0", "0", "100%"]
    [bin_row] = [line.split() for line in text.splitlines() if line.startswith("0.")]
    assert bin_row[1:] == ["1", "1", bin_row[3], "100%"] and bin_row[3].endswith("%")
    # Thirteen days without answers, then today's Yes.
    assert "`" + "·" * 13 + "█` 100% (the last 24 hours), the only day with answers" in text


def test_app_home_shows_the_success_figures(bolt, slack, committing_factory):
    _resolved_and_rated(bolt, slack, committing_factory)

    bolt.event({"type": "app_home_opened", "user": REQUESTER, "channel": "D0HOME",
                "tab": "home", "event_ts": "1732527100.000100"})
    bolt.settled()
    view = shown(slack.home_view(REQUESTER))
    assert "Success by team" in view and "Calibration of autonomous acts" in view
    assert "*CSAT (bot)*\n100% of 1 rating" in view
