"""A busy bot says so, loses nothing, and keeps reads out of the way of decisions.

The decision executor (decisions and the posts they owe) and the reads' executor (App
Home, /resolution-stats) are separate and bounded. In process, with executors of one
thread and no waiting room, held busy by the test: a ticket is stored and its
requester told it may take a few minutes (the sweep decides on it); a read is refused
with a clear "busy"; a slow App Home never holds up a ticket's answer; the App Home's
figures are counted once per 30 seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from bot.core import clock
from bot.core.errors import Busy
from bot.delivery import outbox
from bot.delivery.background import Background
from bot.delivery.slack_client import make_web_client
from bot.workflows import periodic
from bot.workflows.runtime import Runtime
from models import OutboxPurpose, SlackOutbox, Ticket, TicketStatus
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import ADMIN, CHANNEL, REQUESTER, VPN, resolved_ticket, shown, wait_until
from tests.support.scripted_agent import AnswersInTurn, vpn_answer

BUSY = "I'm busy right now, please try again in a minute."
DM = {"type": "message", "channel_type": "im", "channel": "D0REQUESTER", "user": REQUESTER,
      "text": VPN, "ts": "1732528000.000200"}
HOME = {"type": "app_home_opened", "user": REQUESTER, "channel": "D0HOME", "tab": "home"}


def _tickets(sessions) -> list[Ticket]:
    with sessions() as session:
        return session.scalars(select(Ticket).order_by(Ticket.ticket_id)).all()


@pytest.fixture()
def runtime(pg_url, slack, namespace) -> Runtime:
    # A sweep grace of a second: the test waits that long, not a minute.
    return Runtime.from_settings(listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL,
                                                   sweep_grace="1"), namespace=namespace)


@pytest.fixture()
def busy_bolt(runtime, slack, committing_factory):
    """The app with executors of one thread each and no waiting room, and
    `hold(executor)`, which keeps one busy until the test ends."""
    gate = threading.Event()
    decisions = Background(1, queue_limit=0, name="busy-test-decisions")
    reads = Background(1, queue_limit=0, name="busy-test-reads")

    def hold(executor: Background) -> None:
        started = threading.Event()
        executor.submit(lambda: (started.set(), gate.wait(30)))
        assert started.wait(5)

    with in_process(runtime, slack, background=decisions, reads=reads) as app:
        try:
            yield app, hold
        finally:
            gate.set()  # before the executors are shut down, which waits for them
    slack.reset()


def test_a_ticket_when_the_bot_is_busy_is_stored_said_so_and_decided_by_the_sweep(
        busy_bolt, runtime, slack, committing_factory):
    bolt, hold = busy_bolt
    hold(bolt.background)
    said = bolt.command("/ticket", VPN)
    assert said.status_code == 200
    assert "is saved. I'm busy right now, so it may take a few minutes" in shown(said.json())
    [ticket] = _tickets(committing_factory)
    assert ticket.status == TicketStatus.NEW and not ticket.agent_processed

    time.sleep(1.1)  # past the sweep's grace
    assert periodic.sweep_new_tickets(runtime, make_web_client(runtime.settings)) == 1
    [post] = slack.wait_for("chat.postMessage")
    assert post.args["channel"] == CHANNEL and f"#{ticket.ticket_id}" in post.args["text"]
    assert _tickets(committing_factory)[0].status == TicketStatus.RESOLVED


def test_a_dm_when_the_bot_is_busy_is_stored_and_answered_that_it_will_take_a_while(
        busy_bolt, runtime, slack, committing_factory):
    bolt, hold = busy_bolt
    hold(bolt.background)
    assert bolt.event(DM).status_code == 200
    [ticket] = _tickets(committing_factory)
    with committing_factory() as session:
        [owed] = session.scalars(select(SlackOutbox)).all()
    assert (owed.purpose, owed.channel, owed.thread_ts) == (OutboxPurpose.NOTICE, "D0REQUESTER",
                                                            DM["ts"])
    # The outbox job sends it (the executor that would post now is the full one).
    assert outbox.deliver(runtime.sessions, make_web_client(runtime.settings),
                          ttl=runtime.settings.claim_ttl) == 1
    [notice] = slack.messages("D0REQUESTER")
    assert notice["text"] == (f"Got it — ticket #{ticket.ticket_id} is saved. I'm busy right now, "
                              "so it may take a few minutes before I answer here.")
    assert ticket.status == TicketStatus.NEW


def test_reads_when_their_executor_is_full_are_refused_plainly(busy_bolt, slack, committing_factory):
    bolt, hold = busy_bolt
    hold(bolt.reads)
    said = bolt.command("/resolution-stats", "7")
    assert said.status_code == 200
    assert said.json()["response_type"] == "ephemeral" and said.json()["text"] == BUSY
    assert bolt.event(HOME).status_code == 200  # the tab keeps what it showed; nothing queued
    # ...and a ticket is decided as usual: reads never take a decision's place.
    assert "I'm looking into it" in shown(bolt.command("/ticket", VPN).json())
    [post] = slack.wait_for("chat.postMessage")
    assert slack.calls("views.publish") == []


def test_a_slow_app_home_never_holds_up_a_tickets_answer(bolt, slack, committing_factory):
    slack.delay("views.publish", 2.5, times=2)  # Slack slow to draw two App Homes
    for user in (REQUESTER, ADMIN):
        assert bolt.event({**HOME, "user": user}).status_code == 200
    assert bolt.command("/ticket", VPN).status_code == 200
    # The answer is posted while the App Homes are still being drawn, not 5 s later
    # behind them (a call is recorded once answered).
    slack.wait_for("chat.postMessage", timeout=3)
    assert slack.calls("views.publish") == []
    bolt.settled()
    assert len(slack.calls("views.publish")) == 2


def test_the_app_homes_figures_are_counted_once_per_30_seconds(bolt, slack, committing_factory):
    with time_machine.travel(clock.now(), tick=True) as traveller:
        assert bolt.event(HOME).status_code == 200
        bolt.settled()
        assert "Resolutions*\n0" in shown(slack.home_view(REQUESTER))

        resolved_ticket(committing_factory)
        traveller.shift(timedelta(seconds=20))
        assert bolt.event(HOME).status_code == 200
        bolt.settled()
        assert "Resolutions*\n0" in shown(slack.home_view(REQUESTER))  # the same count

        traveller.shift(timedelta(seconds=11))
        assert bolt.event(HOME).status_code == 200
        bolt.settled()
        assert "Resolutions*\n1" in shown(slack.home_view(REQUESTER))
    assert len(slack.calls("views.publish")) == 3


def test_a_reply_to_the_bots_question_when_the_bot_is_busy_is_kept_and_decided_by_the_sweep(
        busy_bolt, runtime, slack, committing_factory):
    bolt, _ = busy_bolt
    runtime.agent = AnswersInTurn(vpn_answer(confidence=0.35, action="request_clarification"), vpn_answer())
    assert bolt.event({**DM, "text": "it keeps dropping"}).status_code == 200
    slack.wait_for("chat.postMessage")
    hold = busy_bolt[1]

    def held() -> bool:
        try:  # once the question's decision has let go of the one thread
            hold(bolt.background)
        except Busy:
            return False
        return True

    wait_until(held, what="the decision thread to be free")
    reply = {**DM, "text": VPN, "ts": "1732528100.000300", "thread_ts": DM["ts"]}

    assert bolt.event(reply).status_code == 200

    [ticket] = _tickets(committing_factory)
    assert ticket.status == TicketStatus.AWAITING_USER  # not decided yet
    client = make_web_client(runtime.settings)
    assert outbox.deliver(runtime.sessions, client, ttl=runtime.settings.claim_ttl) == 1
    notice = slack.messages("D0REQUESTER")[-1]
    assert (notice["thread_ts"], notice["text"]) == (
        DM["ts"], f"Got it — I added that to ticket #{ticket.ticket_id}. I'm busy right now, so it may "
        "take a few minutes before I answer here.")
    time.sleep(1.1)  # past the sweep's grace
    assert periodic.sweep_new_tickets(runtime, client) == 1
    assert _tickets(committing_factory)[0].status == TicketStatus.RESOLVED

