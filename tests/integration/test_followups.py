"""Follow-up DMs: one per unanswered resolution, never for an answered one, never twice.

A follow-up is an outbox row due a day after the resolution; the outbox delivers it
like any other row (`outbox.deliver`, what the delivery job runs).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from bot.core.settings import load_settings
from bot.delivery import followup_batches, outbox
from bot.delivery.slack_client import make_web_client
from bot.domain import followups
from bot.domain.feedback import record_answer, record_rating
from bot.domain.ratelimit import RollbackThrottle, make_storage
from bot.domain.rollback import rollback_action, short_id
from bot.sandbox.standin import SlackStandIn
from models import OutboxPurpose, OutboxStatus, SlackOutbox, Ticket, TicketResolution, transaction
from tests.support.factories import make_action, make_ticket
from tests.support.harness import wait_until
from tests.support.interleave import all_read_first

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
TTL = timedelta(minutes=2)


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
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


def _wait_until_sending(factory) -> None:
    """Until the sender has claimed the follow-up and is inside the (slow) Slack call,
    with the resolution locked: the DM goes to the user id, so no earlier call says so."""
    wait_until(lambda: any(r.claimed_until for r in _followup_rows(factory)), what="the claim")
    time.sleep(0.3)


def _followup_rows(factory) -> list[SlackOutbox]:
    with transaction(factory) as session:
        return session.scalars(select(SlackOutbox).where(
            SlackOutbox.purpose == OutboxPurpose.FOLLOWUP).order_by(SlackOutbox.id)).all()


def test_the_follow_up_is_written_with_the_resolution_and_only_with_it(committing_factory):
    [ticket_id] = _resolved(committing_factory)
    [row] = _followup_rows(committing_factory)
    with transaction(committing_factory) as session:
        resolution = session.scalars(select(TicketResolution)).one()
    assert (row.status, row.next_attempt_at, row.recipient, row.channel) == (
        OutboxStatus.PENDING, T0 + DAY, "UREQ", None)
    assert (row.resolution_id, row.ticket_id) == (resolution.id, ticket_id)
    assert resolution.followup_due_at == T0 + DAY
    # Another kind of action owes none; a resolution whose transaction fails leaves neither.
    with transaction(committing_factory) as session:
        make_action(session, action_type="ESCALATE", now=T0)
    with pytest.raises(RuntimeError), transaction(committing_factory) as session:
        make_action(session, now=T0)
        raise RuntimeError("the decision's transaction fails after the resolution")
    assert len(_followup_rows(committing_factory)) == 1
    with transaction(committing_factory) as session:
        assert len(session.scalars(select(TicketResolution)).all()) == 1


def test_nothing_is_sent_before_the_delay(committing_factory, client, fake):
    _resolved(committing_factory)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY - timedelta(seconds=1)) == 0
    assert _dms(fake) == []


def test_one_dm_with_the_buttons_and_metadata_after_the_delay(committing_factory, client, fake):
    [ticket_id] = _resolved(committing_factory)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 1
    [dm] = _dms(fake)
    # Sent to the requester's id: Slack opens the app's DM; no conversations.open.
    assert dm.args["channel"] == "UREQ" and fake.calls("conversations.open") == []
    [row] = _followup_rows(committing_factory)
    assert row.sent_channel == dm.response["channel"] == fake.dm_channel("UREQ")
    assert dm.args["metadata"]["event_type"] == "resolvemeq_followup"
    actions = {e.get("action_id") for b in dm.args["blocks"] for e in b.get("elements", [])}
    assert {"feedback_yes", "feedback_no", "rate_1", "rate_5"} <= actions
    assert "Yesterday" in dm.args["text"]
    # And never again.
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + 3 * DAY) == 0
    assert len(_dms(fake)) == 1
    with transaction(committing_factory) as session:
        resolution = session.scalars(select(TicketResolution)).one()
        assert resolution.followup_sent_at is not None
    [row] = _followup_rows(committing_factory)
    assert (row.status, row.sent_channel, row.message_ts) == (
        OutboxStatus.SENT, fake.dm_channel("UREQ"), dm.response["ts"])


def test_an_answered_resolution_gets_no_follow_up(committing_factory, client, fake):
    [ticket_id] = _resolved(committing_factory)
    with transaction(committing_factory) as session:
        record_rating(session, ticket_id=ticket_id, user_id="UREQ", score=4, now=T0 + timedelta(hours=1))
    # Cancelled by the answer's own transaction, with the reason: not a failure.
    [row] = _followup_rows(committing_factory)
    assert (row.status, row.cancel_reason) == (OutboxStatus.CANCELLED, followups.ANSWERED)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert _dms(fake) == []


def test_an_answer_after_the_claim_but_before_the_send_still_stops_the_dm(
    committing_factory, client, fake
):
    # The reference system's bug: the sweep picked the row, the person answered, the
    # DM went out anyway. The answer cancels the claimed row; the send finds it so.
    [ticket_id] = _resolved(committing_factory)
    with transaction(committing_factory) as session:
        claimed = outbox.claim_due(session, now=T0 + DAY, ttl=TTL)
    with transaction(committing_factory) as session:
        record_answer(session, ticket_id=ticket_id, user_id="UREQ", solved=True,
                      default_team="IT", now=T0 + DAY)
    assert outbox.send_claimed(committing_factory, client, claimed, ttl=TTL, now=T0 + DAY) == 0
    assert _dms(fake) == []
    [row] = _followup_rows(committing_factory)
    assert (row.status, row.cancel_reason) == (OutboxStatus.CANCELLED, followups.ANSWERED)


def test_an_answer_during_the_send_waits_for_the_dm_instead_of_crossing_it(
    committing_factory, fake
):
    # Slack takes 1.5 s over the DM. The answer arrives meanwhile: it waits for the
    # send to be recorded (the resolution is locked while the DM goes out), so there is
    # never a DM after an answer that was already recorded.
    [ticket_id] = _resolved(committing_factory, at=datetime.now(UTC) - DAY - timedelta(minutes=1))
    fake.delay("chat.postMessage", 1.5)
    client = make_web_client(load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                                           slack_bot_token=fake.token), timeout=10)
    sent = []
    sender = threading.Thread(target=lambda: sent.append(outbox.deliver(committing_factory, client)))
    sender.start()
    _wait_until_sending(committing_factory)
    started = time.monotonic()
    with transaction(committing_factory) as session:
        record_rating(session, ticket_id=ticket_id, user_id="UREQ", score=5)
        waited = time.monotonic() - started
        # What the answer's transaction saw once it had the lock: the DM recorded sent.
        status = session.scalar(select(SlackOutbox.status).where(
            SlackOutbox.purpose == OutboxPurpose.FOLLOWUP))
    sender.join()
    assert sent == [1] and len(_dms(fake)) == 1
    assert status == OutboxStatus.SENT and waited > 0.3
    with transaction(committing_factory) as session:
        resolution = session.scalars(select(TicketResolution)).one()
        assert resolution.satisfaction_score == 5
        assert resolution.followup_sent_at is not None


@pytest.mark.postgres_only  # lock_timeout: on SQLite the click waits for the write lock
def test_a_click_during_a_stuck_send_fails_fast_and_counts_once_clicked_again(
    committing_factory, fake
):
    # Slack hangs over the DM longer than a click may wait (Slack wants its ack in
    # 3 s): the click is refused like an outage ("try again") instead of holding the
    # ack; clicked again after the DM went out, it counts.
    [ticket_id] = _resolved(committing_factory, at=datetime.now(UTC) - DAY - timedelta(minutes=1))
    fake.delay("chat.postMessage", 4.0)
    client = make_web_client(load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                                           slack_bot_token=fake.token), timeout=10)
    sender = threading.Thread(target=lambda: outbox.deliver(committing_factory, client))
    sender.start()
    _wait_until_sending(committing_factory)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="lock timeout"), \
            transaction(committing_factory) as session:
        record_rating(session, ticket_id=ticket_id, user_id="UREQ", score=5)
    assert time.monotonic() - started < 2.9
    sender.join()
    with transaction(committing_factory) as session:
        record_rating(session, ticket_id=ticket_id, user_id="UREQ", score=5)
    assert len(_dms(fake)) == 1
    with transaction(committing_factory) as session:
        resolution = session.scalars(select(TicketResolution)).one()
        assert resolution.satisfaction_score == 5 and resolution.followup_sent_at is not None


def test_a_rollback_cancels_the_follow_up_and_a_new_resolution_owes_one_afresh(
    committing_factory, client, fake, settings
):
    with transaction(committing_factory) as session:
        ticket = make_ticket(session)
        action = make_action(session, ticket=ticket, now=T0)
        ticket_id, ref = ticket.ticket_id, short_id(action.id)
    with transaction(committing_factory) as session:
        rollback_action(session, ref=ref, admin_id="UADMIN", is_admin=True, reason="wrong",
                        throttle=RollbackThrottle(settings, make_storage(None)),
                        now=T0 + timedelta(hours=1))
    [row] = _followup_rows(committing_factory)
    assert (row.status, row.cancel_reason) == (OutboxStatus.CANCELLED, followups.ROLLED_BACK)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    # Resolved again later: the same resolution row, one follow-up owed again.
    later = T0 + timedelta(hours=2)
    with transaction(committing_factory) as session:
        make_action(session, ticket=session.get(Ticket, ticket_id), now=later)
    old, new = _followup_rows(committing_factory)
    assert old.status == OutboxStatus.CANCELLED
    assert (new.status, new.next_attempt_at) == (OutboxStatus.PENDING, later + DAY)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=later + DAY) == 1
    assert len(_dms(fake)) == 1


def test_a_follow_up_no_longer_wanted_at_send_time_is_cancelled_not_failed(
    committing_factory, client, fake
):
    # An answer written without cancelling (a path that forgot, a manual fix): the
    # send-time check reads the resolution and stops the DM.
    _resolved(committing_factory)
    with transaction(committing_factory) as session:
        session.execute(update(TicketResolution).values(resolution_confirmed=True))
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert _dms(fake) == []
    [row] = _followup_rows(committing_factory)
    assert (row.status, row.cancel_reason) == (OutboxStatus.CANCELLED, followups.ANSWERED)


def test_a_worker_killed_after_its_claim_loses_nothing(committing_factory, client, fake):
    _resolved(committing_factory)
    with transaction(committing_factory) as session:
        [claim] = outbox.claim_due(session, now=T0 + DAY, ttl=TTL)
    # ...the worker dies here. Within the claim nobody else may send:
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=1)) == 0
    # After it expires another worker takes over, checks the DM, and sends once.
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=3)) == 1
    assert len(_dms(fake)) == 1
    assert fake.calls("conversations.history"), "a takeover looks before it sends"


def test_a_worker_killed_after_slack_accepted_the_dm_sends_no_second(committing_factory, client, fake):
    _resolved(committing_factory)
    with transaction(committing_factory) as session:
        [claim] = outbox.claim_due(session, now=T0 + DAY, ttl=TTL)
    # The dying worker got its DM out, then died before recording it.
    channel = client.conversations_open(users="UREQ")["channel"]["id"]
    client.chat_postMessage(channel=channel, text="Earlier I suggested...", metadata={
        "event_type": outbox.FOLLOWUP_EVENT,
        "event_payload": {"outbox_id": claim.id, "resolution_id": claim.resolution_id}})
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=3)) == 1
    assert len(_dms(fake)) == 1
    with transaction(committing_factory) as session:
        assert session.scalars(select(TicketResolution)).one().followup_sent_at is not None


def test_a_dm_sent_before_follow_ups_moved_into_the_outbox_is_found_too(
    committing_factory, client, fake
):
    # Migration 0005 moved a follow-up whose worker had sent the DM (metadata naming
    # only the resolution) and died before recording it. The fake Slack's clock starts
    # in 2024, so the resolution is older than its messages here, as in life.
    [ticket_id] = _resolved(committing_factory, at=datetime(2024, 1, 1, tzinfo=UTC))
    [row] = _followup_rows(committing_factory)
    with transaction(committing_factory) as session:
        session.execute(update(SlackOutbox).values(attempts=1))  # the old worker's attempt
    channel = client.conversations_open(users="UREQ")["channel"]["id"]
    client.chat_postMessage(channel=channel, text="Earlier I suggested...", metadata={
        "event_type": "resolvemeq_followup", "event_payload": {"resolution_id": row.resolution_id}})
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0) == 1
    assert len(_dms(fake)) == 1


def test_a_follow_up_that_cannot_be_drawn_is_retried_later_and_holds_up_no_other(
    committing_factory, client, fake, monkeypatch
):
    from bot import views

    first, second = _resolved(committing_factory, 2)
    draw = views.followup_dm

    def broken_for_the_first(ticket, action, **kwargs):
        if ticket.ticket_id == first:
            raise ValueError("a ticket the view cannot render")
        return draw(ticket, action, **kwargs)

    monkeypatch.setattr(views, "followup_dm", broken_for_the_first)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 1
    assert [c.args["metadata"]["event_payload"]["resolution_id"] for c in _dms(fake)] == [second]
    broken = _followup_rows(committing_factory)[0]
    assert (broken.status, broken.last_error, broken.claimed_until) == (
        OutboxStatus.PENDING, "unexpected: ValueError", None)
    assert broken.next_attempt_at > T0 + DAY
    monkeypatch.setattr(views, "followup_dm", draw)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=5)) == 1
    assert len(_dms(fake)) == 2


def test_slack_down_retries_later_and_still_sends_once(committing_factory, client, fake):
    _resolved(committing_factory)
    fake.fail_next("chat.postMessage", status=500, times=3)
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(seconds=10)) == 0
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY + timedelta(minutes=5)) == 1
    assert len(_dms(fake)) == 1


def test_a_requester_slack_will_not_dm_is_given_up_not_retried_forever(committing_factory, client, fake):
    _resolved(committing_factory)
    fake.fail_next("chat.postMessage", error="channel_not_found")
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + 2 * DAY) == 0
    [row] = _followup_rows(committing_factory)
    assert row.status == OutboxStatus.FAILED and "DM" in row.last_error
    with transaction(committing_factory) as session:
        assert session.scalars(select(TicketResolution)).one().followup_due_at is None


def test_racing_senders_send_each_follow_up_once(racing_factory, client, fake):
    _resolved(racing_factory, 60)
    barrier = threading.Barrier(4)
    sent = []

    def worker():
        barrier.wait()
        sent.append(outbox.deliver(racing_factory, client, ttl=TTL, limit=7, now=T0 + DAY))
        while (n := outbox.deliver(racing_factory, client, ttl=TTL, limit=7, now=T0 + DAY)):
            sent.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    # Every worker has read the due rows before any claims them, unless the database
    # makes the others wait (SKIP LOCKED; SQLite's write lock at BEGIN).
    with all_read_first(racing_factory.kw["bind"], r"FROM slack_outbox", parties=4):
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
        target=lambda: sent.append(outbox.deliver(committing_factory, client, ttl=ttl, limit=8)))
    first.start()
    time.sleep(1.5)
    while first.is_alive():
        sent.append(outbox.deliver(committing_factory, client, ttl=ttl))
        time.sleep(0.2)
    first.join()
    while (n := outbox.deliver(committing_factory, client, ttl=ttl)):
        sent.append(n)
    ids = [c.args["metadata"]["event_payload"]["resolution_id"] for c in _dms(fake)]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 8
    assert sum(sent) == 8


def test_due_time_follows_the_clock(committing_factory, client, fake):
    with time_machine.travel(T0, tick=False) as traveller:
        with transaction(committing_factory) as session:
            make_action(session, followup_delay=timedelta(minutes=30))
        traveller.shift(timedelta(minutes=29))
        assert outbox.deliver(committing_factory, client, ttl=TTL) == 0
        traveller.shift(timedelta(minutes=2))
        assert outbox.deliver(committing_factory, client, ttl=TTL) == 1


def test_many_follow_ups_go_out_once_each_in_a_few_transactions(committing_factory, client, fake):
    # Records are written a group at a time: 150 DMs take a handful of commits (one per
    # claim and one per group), not one or more per DM; each goes out once.
    from sqlalchemy import event

    _resolved(committing_factory, 150)
    engine = committing_factory.kw["bind"]
    commits = []
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        sent = outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY)
        sent += outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY)
    finally:
        event.remove(engine, "commit", listener)
    assert sent == 150
    ids = [c.args["metadata"]["event_payload"]["resolution_id"] for c in _dms(fake)]
    assert len(ids) == len(set(ids)) == 150
    assert all(c.args["channel"] == "UREQ" for c in _dms(fake))
    assert len(commits) < 40, len(commits)
    with transaction(committing_factory) as session:
        assert session.scalar(select(func.count()).select_from(TicketResolution).where(
            TicketResolution.followup_sent_at.is_not(None))) == 150
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + 3 * DAY) == 0


def test_an_answer_to_a_dm_waiting_in_a_group_waits_briefly_and_cancels_it(committing_factory, fake):
    # Slack takes 0.2 s a DM: the group posts for half a second, commits, and only then
    # may the answer about its last row go through; that row is then never sent.
    ticket_ids = _resolved(committing_factory, 10, at=datetime.now(UTC) - DAY - timedelta(minutes=1))
    fake.delay("chat.postMessage", 0.2, times=10)
    client = make_web_client(load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                                           slack_bot_token=fake.token), timeout=10)
    sent = []
    sender = threading.Thread(target=lambda: sent.append(outbox.deliver(committing_factory, client)))
    sender.start()
    wait_until(lambda: any(r.claimed_until for r in _followup_rows(committing_factory)), what="the claim")
    time.sleep(0.1)
    started = time.monotonic()
    with transaction(committing_factory) as session:
        record_rating(session, ticket_id=ticket_ids[-1], user_id="UREQ", score=5)
    waited = time.monotonic() - started
    sender.join()
    assert waited < followup_batches.GROUP_BUDGET + 1.0, waited
    assert sent == [9] and len(_dms(fake)) == 9
    last = _followup_rows(committing_factory)[-1]
    assert (last.status, last.cancel_reason) == (OutboxStatus.CANCELLED, followups.ANSWERED)
