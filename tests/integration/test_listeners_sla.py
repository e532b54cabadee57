"""/resolution-stats through the real app in process (signed requests, real PostgreSQL):
after the `check_sla` job measured a ticket the bot answered, the figures show its team
and priority with the first response met."""

from __future__ import annotations

from sqlalchemy import select

from bot.delivery.slack_client import make_web_client
from bot.workflows import periodic
from models import Ticket, TicketSla
from tests.support.harness import ADMIN, VPN, shown, wait_until


def test_stats_show_service_levels_per_team_and_priority(bolt, slack, committing_factory, listener_runtime):
    assert bolt.command("/ticket", VPN).status_code == 200
    slack.wait_for("chat.postMessage")

    def resolved():
        with committing_factory() as session:
            ticket = session.scalars(select(Ticket)).one()
            return ticket if ticket.status == "resolved" else None

    ticket = wait_until(resolved, what="the bot's answer")
    bolt.settled()
    before = bolt.command("/resolution-stats", "7").json()
    assert "No tickets measured against SLA_TARGETS yet." in shown(before)

    assert periodic.check_sla(listener_runtime, make_web_client(listener_runtime.settings, timeout=2)) == 0
    with committing_factory() as session:
        row = session.get(TicketSla, ticket.ticket_id)
        assert row.settled and row.response_s is not None and row.response_s <= row.response_target_s
    said = bolt.command("/resolution-stats", "7").json()
    text = shown(said)
    assert "Service levels" in text and row.team in text
    # One ticket, its first response and its resolution met, none breached.
    section = text[text.index("Service levels"):]
    line = next(line for line in section.splitlines() if line.startswith(row.team[:20]))
    # Answered within seconds: both medians under a minute.
    cells = line.split()
    assert cells[:4] == [row.team, "normal", "1", "1/0"] and cells[5] == "1/0", line
    assert cells[4].endswith("s") and cells[6].endswith("s"), line


def test_history_and_app_home_show_service_levels(bolt, slack, committing_factory, listener_runtime):
    assert bolt.command("/ticket", VPN).status_code == 200
    slack.wait_for("chat.postMessage")

    def resolved():
        with committing_factory() as session:
            ticket = session.scalars(select(Ticket)).one()
            return ticket if ticket.status == "resolved" else None

    ticket = wait_until(resolved, what="the bot's answer")
    bolt.settled()
    before = shown(bolt.command("/history", str(ticket.ticket_id), user=ADMIN).json())
    assert "*Service level*: not measured yet" in before

    periodic.check_sla(listener_runtime, make_web_client(listener_runtime.settings, timeout=2))
    history = shown(bolt.command("/history", str(ticket.ticket_id), user=ADMIN).json())
    assert "*Service level* · normal priority" in history
    assert ":white_check_mark: First response: met in" in history and "(target 4h)" in history
    assert ":white_check_mark: Resolution: met in" in history and "(target 3d)" in history

    bolt.event({"type": "app_home_opened", "user": ADMIN, "channel": "D0HOME",
                "tab": "home", "event_ts": "1732527100.000100"})
    bolt.settled()
    home = shown(slack.home_view(ADMIN))
    assert "Service levels" in home and "1/0" in home
