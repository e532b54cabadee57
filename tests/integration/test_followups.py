"""Follow-up DMs: one per unanswered resolution, never for an answered one, never twice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from bot.core.settings import load_settings
from bot.delivery import followups
from bot.delivery.slack_client import make_web_client
from bot.domain.feedback import record_rating
from models import TicketResolution, transaction
from tests.support.factories import make_action
from tests.support.fake_slack import FakeSlack

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
TTL = timedelta(minutes=2)


@pytest.fixture()
def fake():
    with FakeSlack() as slack:
        yield slack


@pytest.fixture()
def client(fake):
    settings = load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                             slack_bot_token=fake.token)
    return make_web_client(settings, timeout=2)


def _resolved(factory, n=1, *, user="UREQ", at=T0):
    with transaction(factory) as session:
        return [make_action(session, user_id=user, now=at, followup_delay=DAY).ticket_id
                for _ in range(n)]


def _dms(fake):
    return [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]


def test_nothing_is_sent_before_the_delay(committing_factory, client, fake):
    _resolved(committing_factory)
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY - timedelta(seconds=1)) == 0
    assert _dms(fake) == []


def test_one_dm_with_the_buttons_and_metadata_after_the_delay(committing_factory, client, fake):
    [ticket_id] = _resolved(committing_factory)
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY) == 1
    [dm] = _dms(fake)
    assert dm.args["channel"] == fake.dm_channel("UREQ")
    assert dm.args["metadata"]["event_type"] == "resolvemeq_followup"
    actions = {e.get("action_id") for b in dm.args["blocks"] for e in b.get("elements", [])}
    assert {"feedback_yes", "feedback_no", "rate_1", "rate_5"} <= actions
    assert "Yesterday" in dm.args["text"]
    # And never again.
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + 3 * DAY) == 0
    assert len(_dms(fake)) == 1
    with transaction(committing_factory) as session:
        resolution = session.scalars(select(TicketResolution)).one()
        assert resolution.followup_sent_at is not None
        assert resolution.followup_message_ts == dm.response["ts"]


def test_an_answered_resolution_gets_no_follow_up(committing_factory, client, fake):
    [ticket_id] = _resolved(committing_factory)
    with transaction(committing_factory) as session:
        record_rating(session, ticket_id=ticket_id, user_id="UREQ", score=4, now=T0 + timedelta(hours=1))
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert _dms(fake) == []


def test_a_worker_killed_after_its_claim_loses_nothing(committing_factory, client, fake):
    _resolved(committing_factory)
    with transaction(committing_factory) as session:
        [claim] = followups.claim_due(session, now=T0 + DAY, ttl=TTL)
    # ...the worker dies here. Within the claim nobody else may send:
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=1)) == 0
    # After it expires another worker takes over, checks the DM, and sends once.
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=3)) == 1
    assert len(_dms(fake)) == 1
    assert fake.calls("conversations.history"), "a takeover looks before it sends"


def test_a_worker_killed_after_slack_accepted_the_dm_sends_no_second(committing_factory, client, fake):
    _resolved(committing_factory)
    with transaction(committing_factory) as session:
        [claim] = followups.claim_due(session, now=T0 + DAY, ttl=TTL)
    # The dying worker got its DM out, then died before recording it.
    channel = client.conversations_open(users="UREQ")["channel"]["id"]
    client.chat_postMessage(channel=channel, text=claim.text, blocks=claim.blocks, metadata={
        "event_type": followups.METADATA_EVENT,
        "event_payload": {"resolution_id": claim.resolution_id}})
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=3)) == 1
    assert len(_dms(fake)) == 1
    with transaction(committing_factory) as session:
        assert session.scalars(select(TicketResolution)).one().followup_sent_at is not None


def test_slack_down_retries_later_and_still_sends_once(committing_factory, client, fake):
    _resolved(committing_factory)
    fake.fail_next("chat.postMessage", status=500, times=3)
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(seconds=10)) == 0
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=5)) == 1
    assert len(_dms(fake)) == 1


def test_a_requester_slack_will_not_dm_is_given_up_not_retried_forever(committing_factory, client, fake):
    _resolved(committing_factory)
    fake.fail_next("conversations.open", error="user_not_found")
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert followups.send_due(committing_factory, client, ttl=TTL, now=T0 + 2 * DAY) == 0
    with transaction(committing_factory) as session:
        resolution = session.scalars(select(TicketResolution)).one()
        assert resolution.followup_due_at is None and "DM" in resolution.followup_last_error


def test_racing_senders_send_each_follow_up_once(committing_factory, client, fake):
    _resolved(committing_factory, 60)
    barrier = threading.Barrier(4)
    sent = []

    def worker():
        barrier.wait()
        sent.append(followups.send_due(committing_factory, client, ttl=TTL, limit=7, now=T0 + DAY))
        while (n := followups.send_due(committing_factory, client, ttl=TTL, limit=7, now=T0 + DAY)):
            sent.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sent) == 60
    ids = [c.args["metadata"]["event_payload"]["resolution_id"] for c in _dms(fake)]
    assert len(ids) == 60 and len(set(ids)) == 60


def test_a_batch_that_outlives_its_claim_still_sends_each_dm_once(committing_factory, client, fake):
    # Slack at 0.3 s a DM and a 1 s claim: the first worker's batch of 8 outlives its
    # claim, and a second worker takes over the rows not reached yet.
    _resolved(committing_factory, 8, at=datetime.now(UTC) - DAY - timedelta(minutes=1))
    fake.delay("chat.postMessage", 0.3, times=100)
    ttl = timedelta(seconds=1)
    sent = []
    first = threading.Thread(
        target=lambda: sent.append(followups.send_due(committing_factory, client, ttl=ttl, limit=8)))
    first.start()
    time.sleep(1.5)
    while first.is_alive():
        sent.append(followups.send_due(committing_factory, client, ttl=ttl))
        time.sleep(0.2)
    first.join()
    while (n := followups.send_due(committing_factory, client, ttl=ttl)):
        sent.append(n)
    ids = [c.args["metadata"]["event_payload"]["resolution_id"] for c in _dms(fake)]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 8
    assert sum(sent) == 8


def test_due_time_follows_the_clock(committing_factory, client, fake):
    with time_machine.travel(T0, tick=False) as traveller:
        with transaction(committing_factory) as session:
            make_action(session, followup_delay=timedelta(minutes=30))
        traveller.shift(timedelta(minutes=29))
        assert followups.send_due(committing_factory, client, ttl=TTL) == 0
        traveller.shift(timedelta(minutes=2))
        assert followups.send_due(committing_factory, client, ttl=TTL) == 1
