"""Slack refusing the bot's token or grants holds what is owed; nothing is lost.

During a token rotation or a reinstall every Slack call fails with invalid_auth,
token_revoked, missing_scope...: such a row is `held` (not failed), keeps its due time,
and goes out once the token works again (the delivery job asks `auth.test`, then tries
the oldest held row before releasing the rest). The admins hear of it through the
`slack_posts_held` alert, in Sentry and the log even while Slack refuses that too.
On PostgreSQL and SQLite.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.core.settings import load_settings
from bot.delivery import outbox
from bot.delivery.slack_client import TOKEN_ERRORS, make_web_client
from bot.domain.feedback import record_rating
from bot.sandbox.standin import SlackStandIn
from bot.views.alerts import NoticeKind
from bot.workflows import alerts, periodic
from models import (
    AlertRule,
    OutboxPurpose,
    OutboxStatus,
    SlackOutbox,
    Ticket,
    TicketResolution,
    make_engine,
    make_session_factory,
    transaction,
)
from tests.support.factories import make_action, make_ticket

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
TTL = timedelta(minutes=2)
HELP, ALERTS, CRITICAL = "CHELP", "CALERTS", "CCRITICAL"


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture(params=["postgresql", "sqlite"])
def sessions(request):
    """Real commits on PostgreSQL (tables emptied after) or on a new SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("committing_factory")
        return
    engine = make_engine(request.getfixturevalue("sqlite_url"))
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture()
def config(fake):
    return load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                         slack_bot_token=fake.token, alerts_channel=ALERTS,
                         critical_alerts_channel=CRITICAL, claim_ttl="2m")


@pytest.fixture()
def client(config):
    return make_web_client(config, timeout=2)


def _owed(sessions, at: datetime = T0) -> tuple[int, int]:
    """An auto-resolution (its follow-up due a day later) and a channel notice due now."""
    with transaction(sessions) as session:
        ticket_id = make_action(session, user_id="UREQ", now=at, followup_delay=DAY).ticket_id
        notice = outbox.enqueue(session, purpose=outbox.NOTICE, channel=HELP,
                                text="Ticket #1 needs a person", now=at).id
    return ticket_id, notice


def _rows(sessions) -> list[SlackOutbox]:
    with transaction(sessions) as session:
        return session.scalars(select(SlackOutbox).order_by(SlackOutbox.id)).all()


def _resolution(sessions, ticket_id: int) -> TicketResolution:
    with transaction(sessions) as session:
        return session.scalars(select(TicketResolution).where(
            TicketResolution.ticket_id == ticket_id)).one()


def _posts(fake: SlackStandIn) -> list:
    return [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]


def test_a_refused_token_holds_posts_and_follow_ups_until_it_works_again(sessions, config, client,
                                                                        fake):
    ticket_id, notice = _owed(sessions)
    rotated, fake.token = fake.token, "xoxb-rotated"  # the bot's token no longer works

    assert outbox.deliver(sessions, client, ttl=TTL, now=T0 + DAY) == 0

    followup, post = sorted(_rows(sessions), key=lambda r: r.purpose != OutboxPurpose.FOLLOWUP)
    assert post.id == notice
    # Held, not failed: due when it was, no attempt spent, and why.
    assert [(r.status, r.attempts, r.claimed_until) for r in (followup, post)] == [
        (OutboxStatus.HELD, 0, None)] * 2
    assert (followup.next_attempt_at, post.next_attempt_at) == (T0 + DAY, T0)
    assert followup.last_error == "chat.postMessage: invalid_auth"
    assert post.last_error == "chat.postMessage: invalid_auth"
    assert _resolution(sessions, ticket_id).followup_due_at == T0 + DAY  # still owed
    # The delivery job asks Slack once per pass and sends nothing while it is refused.
    job = SimpleNamespace(sessions=sessions, settings=config)  # what the job reads of a runtime
    before = len(fake.calls())
    assert periodic.deliver_outbox(job, client) == 0
    assert [c.method for c in fake.calls()[before:]] == ["auth.test"]
    assert {r.status for r in _rows(sessions)} == {OutboxStatus.HELD}

    fake.token = rotated  # the operator fixed SLACK_BOT_TOKEN
    assert periodic.deliver_outbox(job, client) == 2

    assert [r.status for r in _rows(sessions)] == [OutboxStatus.SENT] * 2
    assert len(fake.messages(HELP)) == 1 and len(fake.messages(fake.dm_channel("UREQ"))) == 1
    assert _resolution(sessions, ticket_id).followup_sent_at is not None
    assert periodic.deliver_outbox(job, client) == 0
    assert len(_posts(fake)) == 2  # each once


@pytest.mark.parametrize("code", sorted(TOKEN_ERRORS))
def test_every_token_or_grant_error_holds_the_row(committing_factory, client, fake, code):
    with transaction(committing_factory) as session:
        row = outbox.enqueue(session, purpose=outbox.NOTICE, channel=HELP, text="hello", now=T0)
    fake.fail_next("chat.postMessage", error=code)

    assert outbox.deliver(committing_factory, client, [row.id], ttl=TTL, now=T0) == 0

    [held] = _rows(committing_factory)
    assert (held.status, held.last_error, held.attempts) == (
        OutboxStatus.HELD, f"chat.postMessage: {code}", 0)
    assert outbox.release_held(committing_factory, client, ttl=TTL, now=T0) == 1
    assert [r.status for r in _rows(committing_factory)] == [OutboxStatus.SENT]


def test_a_refusal_that_auth_test_cannot_see_is_tried_on_one_row_not_all(
        committing_factory, client, fake):
    # A reinstall that dropped chat:write: auth.test works (it needs no scope), the
    # posts do not. Each pass tries the oldest held row alone until it gets through.
    with transaction(committing_factory) as session:
        for n in range(5):
            outbox.enqueue(session, purpose=outbox.NOTICE, channel=HELP, text=f"notice {n}", now=T0)
    fake.fail_next("chat.postMessage", error="missing_scope", times=6)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0) == 0
    assert {r.status for r in _rows(committing_factory)} == {OutboxStatus.HELD}

    later = T0 + timedelta(minutes=1)
    assert outbox.release_held(committing_factory, client, ttl=TTL, now=later) == 0
    assert len(fake.calls("chat.postMessage")) == 6  # five held, then the one trial
    assert {r.status for r in _rows(committing_factory)} == {OutboxStatus.HELD}

    # The scope is granted again: the trial gets through, the rest are owed again.
    assert outbox.release_held(committing_factory, client, ttl=TTL, now=later) == 1
    assert [r.status for r in _rows(committing_factory)] == [OutboxStatus.SENT] + [
        OutboxStatus.PENDING] * 4
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=later) == 4
    assert [m["text"] for m in fake.messages(HELP)] == [f"notice {n}" for n in range(5)]


def test_an_answer_while_the_follow_up_is_held_cancels_it(sessions, client, fake):
    ticket_id, notice = _owed(sessions)
    assert outbox.deliver(sessions, client, [notice], ttl=TTL, now=T0 + DAY) == 1
    fake.fail_next("chat.postMessage", error="token_revoked")
    assert outbox.deliver(sessions, client, ttl=TTL, now=T0 + DAY) == 0  # the follow-up: held
    [followup] = [r for r in _rows(sessions) if r.purpose == OutboxPurpose.FOLLOWUP]
    assert followup.status == OutboxStatus.HELD

    with transaction(sessions) as session:
        record_rating(session, ticket_id=ticket_id, user_id="UREQ", score=5, now=T0 + DAY)

    [followup] = [r for r in _rows(sessions) if r.purpose == OutboxPurpose.FOLLOWUP]
    assert (followup.status, followup.cancel_reason) == (OutboxStatus.CANCELLED, "answered")
    assert outbox.release_held(sessions, client, ttl=TTL, now=T0 + DAY) == 0
    assert outbox.deliver(sessions, client, ttl=TTL, now=T0 + 2 * DAY) == 0
    assert fake.messages(fake.dm_channel("UREQ")) == []


def test_a_held_retry_still_looks_for_the_post_an_earlier_attempt_made(
        committing_factory, client, fake):
    # The first attempt timed out after Slack posted; the retry met a revoked token.
    # Once the token works the retry still finds the post instead of posting twice.
    with transaction(committing_factory) as session:
        ticket = make_ticket(session)
        row = outbox.enqueue(session, purpose=outbox.TICKET_OUTCOME, channel=HELP, text="answer",
                             ticket_id=ticket.ticket_id, now=T0)
    fast = make_web_client(load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                                         slack_bot_token=fake.token), timeout=0.3)
    fake.delay("chat.postMessage", 1.0)
    assert outbox.deliver(committing_factory, fast, [row.id], ttl=TTL, now=T0) == 0
    fake.wait_for("chat.postMessage")
    fake.fail_next("conversations.history", error="token_revoked")
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + timedelta(minutes=1)) == 0
    [held] = _rows(committing_factory)
    assert (held.status, held.attempts) == (OutboxStatus.HELD, 1)

    assert outbox.release_held(committing_factory, client, ttl=TTL, now=T0 + timedelta(minutes=2)) == 1
    assert len(fake.messages(HELP)) == 1
    with transaction(committing_factory) as session:
        assert session.get(Ticket, ticket.ticket_id).slack_message_ts == fake.messages(HELP)[0]["ts"]


def test_admins_hear_of_held_messages_in_sentry_and_the_log_and_slack_once_it_works(
        sessions, config, client, fake, caplog):
    _owed(sessions)
    rotated, fake.token = fake.token, "xoxb-revoked"
    assert outbox.deliver(sessions, client, ttl=TTL, now=T0 + DAY) == 0
    seen = []

    with caplog.at_level(logging.WARNING):
        fired = alerts.run_alerts(sessions, client, config, now=T0 + DAY, on_notice=seen.append)

    # Said where it can be heard while Slack refuses the token: the hook (Sentry) and
    # the log; its own post is held with the others.
    assert [(n.rule, n.kind, n.channel) for n in fired] == [
        (AlertRule.POSTS_HELD, NoticeKind.FIRING, CRITICAL)]
    assert seen == fired
    assert fired[0].text == (
        "Alert: 2 Slack messages held: Slack refuses the bot's token or the app's grants "
        "(chat.postMessage: invalid_auth). Fix SLACK_BOT_TOKEN or reinstall the app; they "
        "are sent once Slack takes it again")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("refused the bot token" in m and "SLACK_BOT_TOKEN" in m for m in errors)
    assert any("slack_posts_held" in r.getMessage() for r in caplog.records)
    assert [(r.purpose, r.status) for r in _rows(sessions)][-1] == (
        OutboxPurpose.ALERT, OutboxStatus.HELD)

    fake.token = rotated
    later = T0 + DAY + timedelta(minutes=1)
    assert outbox.release_held(sessions, client, ttl=TTL, now=later) == 1
    assert outbox.deliver(sessions, client, ttl=TTL, now=later) == 2
    resolved = alerts.run_alerts(sessions, client, config, now=later)
    assert [n.kind for n in resolved] == [NoticeKind.RESOLVED]
    assert [m["text"].split(":")[0] for m in fake.messages(CRITICAL)] == ["Alert", "Resolved"]
    assert {r.status for r in _rows(sessions)} == {OutboxStatus.SENT}
