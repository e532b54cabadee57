"""The per-person intake limit (TICKET_RATE_LIMIT), in process: the real app, Slack's
signed requests, real PostgreSQL and Redis, the fake Slack Web API.

Past the limit a /ticket, a DM or a mention is refused with a clear sentence and nothing
is stored; the budget is shared by every process through Redis; a Slack retry of a
ticket already taken is not counted again. When the limiter's store is down, tickets
are still taken (a helpdesk must not go deaf), the autonomy caps still fail closed, and
the `limiter_unavailable` alert fires.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from bot.domain import audit
from bot.domain.ratelimit import AutonomyBudget, TicketLimit, make_storage
from bot.workflows.alerts import run_alerts
from bot.workflows.runtime import Runtime
from models import ActionHistory, AlertRule, AuditEvent, Ticket
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import CHANNEL, REQUESTER, STRANGER, VPN, shown, wait_until

DEAD_REDIS = "redis://127.0.0.1:1/0"
ALERTS = "CALERTS"
USER_TS = "1732528000.000200"


def _runtime(pg_url, slack, namespace, **overrides) -> Runtime:
    return Runtime.from_settings(
        listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL, **overrides),
        namespace=namespace)


@pytest.fixture()
def limited(settings, pg_url, slack, namespace, committing_factory):
    with in_process(_runtime(pg_url, slack, namespace, ticket_rate_limit="3/hour"), slack) as app:
        yield app
    slack.reset()


def _tickets(sessions) -> list[Ticket]:
    with sessions() as session:
        return session.scalars(select(Ticket).order_by(Ticket.ticket_id)).all()


def _ephemeral(answer) -> dict:
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert said["response_type"] == "ephemeral", said
    return said


def test_a_ticket_past_the_limit_is_refused_and_stores_nothing(limited, slack, committing_factory):
    for n in range(3):
        assert "Got it" in shown(_ephemeral(limited.command("/ticket", f"{VPN} ({n})")))
    limited.settled()
    answers = len(slack.calls("chat.postMessage"))

    refused = _ephemeral(limited.command("/ticket", "my printer is jammed too"))

    said = shown(refused)
    assert "limit of 3 tickets per hour" in said and "didn't save this one" in said
    assert "You can open another in about" in said
    limited.settled()
    assert [t.description for t in _tickets(committing_factory)] == [f"{VPN} ({n})" for n in range(3)]
    assert not any("printer" in t.description for t in _tickets(committing_factory))
    assert len(slack.calls("chat.postMessage")) == answers  # nothing decided, nothing posted
    with committing_factory() as session:
        assert session.scalars(select(AuditEvent)).all() == []

    # A DM past the limit: refused to the sender alone, nothing stored.
    dm = {"type": "message", "channel_type": "im", "channel": "D0REQUESTER", "user": REQUESTER,
          "text": "and my monitor flickers", "ts": USER_TS, "event_ts": USER_TS}
    assert limited.event(dm).status_code == 200
    [told] = slack.wait_for("chat.postEphemeral")
    assert (told.args["channel"], told.args["user"]) == ("D0REQUESTER", REQUESTER)
    assert "limit of 3 tickets per hour" in told.args["text"]
    assert len(_tickets(committing_factory)) == 3

    # The limit is per person: someone else is heard as usual.
    assert "Got it" in shown(_ephemeral(limited.command("/ticket", VPN, user=STRANGER)))
    assert len(_tickets(committing_factory)) == 4


def test_a_retried_delivery_is_not_counted_again(settings, pg_url, slack, namespace, committing_factory):
    mention = {"type": "app_mention", "channel": CHANNEL, "user": REQUESTER,
               "text": f"<@UBOT> {VPN}", "ts": USER_TS, "event_ts": USER_TS}
    with in_process(_runtime(pg_url, slack, namespace, ticket_rate_limit="1/hour"), slack) as app:
        assert app.event(mention, event_id="Ev0ONCE").status_code == 200
        assert app.event(mention, event_id="Ev0ONCE", retry=1).status_code == 200
        app.settled()
        assert slack.calls("chat.postEphemeral") == []  # the retry was no second ticket
        # The one ticket counted; a new one is past the limit.
        assert app.event({**mention, "ts": "1732528001.000300"}).status_code == 200
        app.settled()
    slack.reset()
    assert len(_tickets(committing_factory)) == 1


def test_the_limit_is_shared_by_every_process_through_redis(settings, pg_url, slack, namespace,
                                                            committing_factory):
    one = _runtime(pg_url, slack, namespace, ticket_rate_limit="2/hour")
    two = _runtime(pg_url, slack, namespace, ticket_rate_limit="2/hour")
    with in_process(one, slack) as first, in_process(two, slack) as second:
        assert "Got it" in shown(_ephemeral(first.command("/ticket", VPN)))
        assert "Got it" in shown(_ephemeral(second.command("/ticket", VPN)))
        assert "limit of 2 tickets per hour" in shown(_ephemeral(first.command("/ticket", VPN)))
        assert "limit of 2 tickets per hour" in shown(_ephemeral(second.command("/ticket", VPN)))
    slack.reset()
    assert len(_tickets(committing_factory)) == 2


def test_with_the_store_down_tickets_are_taken_autonomy_fails_closed_and_the_alert_fires(
        settings, pg_url, slack, namespace, committing_factory):
    runtime = _runtime(pg_url, slack, namespace, ticket_rate_limit="1/hour", alerts_channel=ALERTS)
    dead = make_storage(DEAD_REDIS)
    runtime.ticket_limit = TicketLimit(runtime.settings, dead, namespace=namespace)
    runtime.budget = AutonomyBudget(runtime.settings, dead, namespace=namespace)
    with in_process(runtime, slack) as app:
        started = time.monotonic()
        for _ in range(2):  # past the limit of 1: the limit cannot be counted, so none applies
            assert "Got it" in shown(_ephemeral(app.command("/ticket", VPN)))
        assert time.monotonic() - started < 2.5  # well inside Slack's 3 s
        wait_until(lambda: all(t.slack_message_ts for t in _tickets(committing_factory)) or None,
                   what="both answered")
        app.settled()

        with committing_factory() as session:
            actions = session.scalars(select(ActionHistory)).all()
            events = session.scalars(select(AuditEvent.event_type)).all()
        assert len(_tickets(committing_factory)) == 2
        # The caps failed closed: people decide, the bot only suggests.
        assert [(a.autonomous, a.action_params.get("triage")) for a in actions] == [(False, True)] * 2
        assert sorted(events) == sorted([audit.TICKET_LIMITER_DOWN] * 2 + [audit.AUTONOMY_LIMITER_DOWN] * 2)

        [notice] = run_alerts(runtime.sessions, app.app.client, runtime.settings)
        [alert] = wait_until(lambda: slack.messages(ALERTS), what="the alert")
    slack.reset()
    assert notice.rule == AlertRule.LIMITER_DOWN
    assert "could not be reached 4 times" in alert["text"]  # two intakes, two decisions
    assert "the per-person ticket limit is not enforced" in alert["text"]


def test_the_alert_fires_for_intake_alone(settings, pg_url, slack, namespace, committing_factory):
    # Nothing decided yet (the decision is queued): the intake's own event is enough.
    runtime = _runtime(pg_url, slack, namespace, ticket_rate_limit="20/hour", alerts_channel=ALERTS)
    runtime.ticket_limit = TicketLimit(runtime.settings, make_storage(DEAD_REDIS), namespace=namespace)
    with in_process(runtime, slack) as app:
        assert "Got it" in shown(_ephemeral(app.command("/ticket", VPN)))
        app.settled()
        with committing_factory() as session:
            assert session.scalars(select(AuditEvent.event_type)).all() == [audit.TICKET_LIMITER_DOWN]
        [notice] = run_alerts(runtime.sessions, app.app.client, runtime.settings)
        [alert] = wait_until(lambda: slack.messages(ALERTS), what="the alert")
    slack.reset()
    assert notice.rule == AlertRule.LIMITER_DOWN
    assert alert["text"].startswith(
        "Alert: The autonomy limiter's store (REDIS_URL) could not be reached 1 time")
