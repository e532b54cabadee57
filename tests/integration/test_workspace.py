"""Only our workspace, and only our organisation, reach the listeners.

An app installed in several workspaces signs every one's requests with the same secret,
so the signature cannot tell them apart: the workspace and the Enterprise Grid
organisation a request names must be the bot's own (SLACK_TEAM_ID, else what auth.test
says). Until the bot knows its own, it refuses every request (503, with a log line;
Slack retries events) instead of letting all of them in.

In process: the real app from `create_app`, the fake Slack's auth.test failing or
naming an organisation, real PostgreSQL and Redis.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.delivery import identity
from bot.sandbox.standin import SlackStandIn
from bot.views import ActionId, feedback_value
from bot.workflows.runtime import Runtime
from models import Ticket
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import REQUESTER, TEAM_ID, VPN, wait_until

ORG = "E0RESOLVEQ"
OTHER_ORG = "E0THEIRS"
MENTION = {"type": "app_mention", "user": REQUESTER, "channel": "CHELPDESK",
           "text": f"<@UBOT> {VPN}", "ts": "1732528000.000100"}


def _tickets(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Ticket))


@pytest.fixture()
def app_for(pg_url, namespace, committing_factory):
    """`app_for(fake_slack, **settings)`: the app in process against that Slack."""
    opened = []

    def build(slack: SlackStandIn, **overrides):
        runtime = Runtime.from_settings(
            listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL, **overrides),
            namespace=namespace)
        context = in_process(runtime, slack)
        opened.append(context)
        return context.__enter__()

    yield build
    for context in opened:
        context.__exit__(None, None, None)


def test_until_auth_test_answers_every_request_is_refused_503_and_logged(
        app_for, committing_factory, monkeypatch, caplog):
    monkeypatch.setattr(identity, "RETRY_INTERVAL", 0.2)
    with SlackStandIn() as slack:
        slack.fail_next("auth.test", status=503, times=10_000)
        bolt = app_for(slack)
        with caplog.at_level(logging.WARNING, logger="bot.platform.app"):
            for team in (TEAM_ID, "T0ANYONE"):
                assert bolt.command("/ticket", VPN, team=team).status_code == 503
            assert bolt.event(MENTION).status_code == 503
            assert bolt.click(ActionId.FEEDBACK_YES, feedback_value(1)).status_code == 503
        assert _tickets(committing_factory) == 0
        assert caplog.text.count("the bot does not know its workspace yet") == 4

        slack.reset()  # auth.test answers again: the next lookup learns the workspace
        wait_until(lambda: bolt.command("/ticket", VPN).status_code == 200, timeout=10,
                   what="a ticket accepted once auth.test answered")
        assert _tickets(committing_factory) == 1
        assert bolt.command("/ticket", VPN, team="T0ANYONE").status_code == 403


def test_refused_requests_do_not_each_start_an_auth_test(app_for):
    with SlackStandIn() as slack:
        slack.fail_next("auth.test", status=503, times=10_000)
        bolt = app_for(slack)
        for _ in range(20):
            assert bolt.command("/ticket", VPN).status_code == 503
        # The startup lookup, and no other within RETRY_INTERVAL (5 s).
        assert len(slack.calls("auth.test")) <= 2


def test_with_slack_team_id_the_bot_serves_while_auth_test_fails(app_for, committing_factory):
    with SlackStandIn() as slack:
        slack.fail_next("auth.test", status=503, times=10_000)
        bolt = app_for(slack, slack_team_id=TEAM_ID)
        said = bolt.command("/ticket", VPN)
        assert said.status_code == 200 and "ticket #" in said.json()["text"]
        assert bolt.command("/ticket", VPN, team="T0ANYONE").status_code == 403
        # An organisation cannot be checked before auth.test says which is ours.
        assert bolt.command("/ticket", VPN, enterprise=ORG).status_code == 503
        assert _tickets(committing_factory) == 1


def test_a_request_naming_another_organisation_is_refused(app_for, committing_factory):
    with SlackStandIn(enterprise_id=ORG) as slack:
        bolt = app_for(slack)
        wait_until(lambda: bolt.command("/ticket", VPN, enterprise=ORG).status_code == 200,
                   what="our organisation served once auth.test answered")
        for request in (lambda: bolt.command("/ticket", VPN, enterprise=OTHER_ORG),
                        lambda: bolt.event(MENTION, enterprise=OTHER_ORG),
                        lambda: bolt.click(ActionId.FEEDBACK_YES, feedback_value(1),
                                           enterprise=OTHER_ORG)):
            assert request().status_code == 403
        assert _tickets(committing_factory) == 1


def test_a_workspace_outside_any_organisation_refuses_requests_naming_one(app_for, committing_factory):
    with SlackStandIn() as slack:  # auth.test names no organisation
        bolt = app_for(slack)
        wait_until(lambda: bolt.command("/ticket", VPN).status_code == 200,
                   what="our workspace served once auth.test answered")
        assert bolt.command("/ticket", VPN, enterprise=OTHER_ORG).status_code == 403
        assert _tickets(committing_factory) == 1
