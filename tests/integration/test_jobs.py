"""The periodic jobs: real Celery workers on real Redis, the sweep, the outbox, and a
guard against long countdowns."""

from __future__ import annotations

import ast
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from bot.core import clock
from bot.core.settings import load_settings
from bot.delivery import outbox
from bot.delivery.slack_client import make_web_client
from bot.sandbox.standin import SlackStandIn
from bot.workflows import periodic
from bot.workflows.runtime import Runtime
from models import ActionType, SlackOutbox, Ticket, TicketSource, TicketStatus, transaction
from tests.support.factories import make_action, make_ticket
from tests.support.harness import ROOT, wait_until
from tests.support.jobs_harness import BROKER_URL, Worker, seed_due_followups, sent_count

LONGEST_DELAY = 300  # seconds: anything longer belongs in the database, not the broker


def test_no_task_is_scheduled_with_a_long_countdown_or_eta():
    offenders = []
    for path in [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("jobs").rglob("*.py"),
                 *ROOT.joinpath("handlers").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg in ("eta", "countdown"):
                        ok = isinstance(kw.value, ast.Constant) and kw.value.value <= LONGEST_DELAY
                        if not ok:
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
    from jobs.celery_app import create_celery

    app = create_celery(load_settings(database_url="sqlite://", redis_url=BROKER_URL))
    for entry in app.conf.beat_schedule.values():
        assert entry["schedule"] <= LONGEST_DELAY
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture()
def runtime(pg_url, fake, committing_factory, redis_url, namespace):
    settings = load_settings(database_url=pg_url, slack_api_url=fake.base_url,
                             slack_bot_token=fake.token, redis_url=redis_url)
    rt = Runtime.from_settings(settings, namespace=namespace)
    yield rt
    rt.engine.dispose()


def test_the_sweep_decides_on_tickets_a_dead_process_left_new(runtime, fake):
    old = clock.now() - timedelta(minutes=5)
    with transaction(runtime.sessions) as session:
        stale = make_ticket(session, description="I forgot my password and can't log in",
                            created_at=old)
        stale.slack_channel_id = "CHELP"
        stale.source = TicketSource.SLASH_COMMAND
        fresh = make_ticket(session, description="printer jammed")  # its worker may be on it
    client = make_web_client(runtime.settings, timeout=2)
    assert periodic.sweep_new_tickets(runtime, client) == 1
    assert periodic.sweep_new_tickets(runtime, client) == 0
    with transaction(runtime.sessions) as session:
        assert session.get(Ticket, stale.ticket_id).status != TicketStatus.NEW
        assert session.get(Ticket, fresh.ticket_id).status == TicketStatus.NEW
        assert session.get(Ticket, stale.ticket_id).slack_message_ts  # the answer was posted
    assert [m["text"] for m in fake.messages("CHELP")]


def test_a_failed_post_is_retried_with_backoff_and_sent_once(runtime, fake):
    client = make_web_client(runtime.settings, timeout=2)
    with transaction(runtime.sessions) as session:
        ticket = make_ticket(session)
        row = outbox.enqueue(session, purpose=outbox.TICKET_OUTCOME, channel="CHELP",
                             text="answer", ticket_id=ticket.ticket_id)
    fake.fail_next("chat.postMessage", status=503, times=3)  # the client's own retries too
    assert outbox.deliver(runtime.sessions, client, [row.id]) == 0
    with transaction(runtime.sessions) as session:
        pending = session.get(SlackOutbox, row.id)
        assert pending.status == "pending" and pending.next_attempt_at > clock.now()
    assert outbox.deliver(runtime.sessions, client) == 0  # not due yet
    later = clock.now() + timedelta(minutes=1)
    assert outbox.deliver(runtime.sessions, client, now=later) == 1
    assert outbox.deliver(runtime.sessions, client, now=later + timedelta(hours=1)) == 0
    assert len(fake.messages("CHELP")) == 1
    with transaction(runtime.sessions) as session:
        assert session.get(Ticket, ticket.ticket_id).slack_message_ts


def test_an_outbox_batch_that_outlives_its_claim_still_posts_each_row_once(runtime, fake):
    # Slack at 0.3 s a post and a 1 s claim: the first process's batch of 8 outlives
    # its claim, and a second process takes over the rows not reached yet.
    client = make_web_client(runtime.settings, timeout=2)
    with transaction(runtime.sessions) as session:
        for n in range(8):
            outbox.enqueue(session, purpose=outbox.NOTICE, channel="CHELP", text=f"notice {n}",
                           now=clock.now() - timedelta(seconds=5))
    fake.delay("chat.postMessage", 0.3, times=100)
    ttl = timedelta(seconds=1)
    sent = []
    first = threading.Thread(
        target=lambda: sent.append(outbox.deliver(runtime.sessions, client, ttl=ttl, limit=8)))
    first.start()
    time.sleep(1.5)
    while first.is_alive():
        sent.append(outbox.deliver(runtime.sessions, client, ttl=ttl))
        time.sleep(0.2)
    first.join()
    while (n := outbox.deliver(runtime.sessions, client, ttl=ttl)):
        sent.append(n)
    texts = [m["text"] for m in fake.messages("CHELP")]
    assert sorted(texts) == [f"notice {n}" for n in range(8)]
    assert sum(sent) == 8


def test_a_post_claimed_by_a_process_that_died_is_sent_once_its_claim_expires(runtime, fake):
    # The decision path writes its post already claimed and sends it after the commit;
    # if the process dies in between, the retry job sends it when the claim runs out.
    client = make_web_client(runtime.settings, timeout=2)
    ttl = timedelta(minutes=2)
    with transaction(runtime.sessions) as session:
        outbox.enqueue(session, purpose=outbox.NOTICE, channel="CHELP", text="orphan",
                       claim_ttl=ttl)
    assert outbox.deliver(runtime.sessions, client) == 0  # still claimed: not a second sender
    assert fake.messages("CHELP") == []
    later = clock.now() + ttl + timedelta(seconds=1)
    assert outbox.deliver(runtime.sessions, client, now=later) == 1
    assert outbox.deliver(runtime.sessions, client, now=later + timedelta(hours=1)) == 0
    assert [m["text"] for m in fake.messages("CHELP")] == ["orphan"]


def test_one_job_delivers_due_posts_and_follow_ups_alike(runtime, fake):
    client = make_web_client(runtime.settings, timeout=2)
    now = clock.now()
    with transaction(runtime.sessions) as session:
        make_action(session, user_id="UREQ", now=now - timedelta(days=2))  # its follow-up is due
        make_action(session, user_id="ULATER", now=now)  # due tomorrow
        outbox.enqueue(session, purpose=outbox.NOTICE, channel="CHELP", text="a notice",
                       now=now - timedelta(seconds=5))
    assert periodic.deliver_outbox(runtime, client) == 2
    assert [m["text"] for m in fake.messages("CHELP")] == ["a notice"]
    assert len(fake.messages(fake.dm_channel("UREQ"))) == 1
    assert fake.messages(fake.dm_channel("ULATER")) == []
    assert periodic.deliver_outbox(runtime, client) == 0
    assert "send_followups" not in periodic.JOBS


def test_a_due_backlog_drains_in_one_pass_which_asks_once_for_help(runtime, fake, monkeypatch):
    # More follow-ups due than a batch: one pass (one beat tick) sends them all, batch
    # after batch, and asks once for other senders to share them.
    monkeypatch.setattr(periodic, "DELIVERY_BATCH", 10)
    now = datetime.now(UTC)
    seed_due_followups(runtime.engine, 35, created=now - timedelta(days=2), delay=timedelta(hours=24))
    client = make_web_client(runtime.settings, timeout=2)
    asked: list[int] = []
    assert periodic.deliver_outbox(runtime, client, on_backlog=lambda: asked.append(1)) == 35
    assert asked == [1]
    posts = [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]
    assert len({c.args["metadata"]["event_payload"]["resolution_id"] for c in posts}) == len(posts) == 35
    assert periodic.deliver_outbox(runtime, client, on_backlog=lambda: asked.append(1)) == 0
    assert asked == [1]


def test_jobs_run_once_runs_every_job(runtime, fake, tmp_path):
    runtime.settings = runtime.settings.model_copy(update={
        "alerts_channel": "CALERTS", "audit_channel": "CAUDIT", "retention_days": 30,
        "backup_dir": tmp_path / "backups"})
    client = make_web_client(runtime.settings, timeout=2)
    with transaction(runtime.sessions) as session:
        make_action(session, user_id="UREQ")  # a chain head to anchor
    results = periodic.run_once(runtime, client)
    assert set(results) == set(periodic.JOBS)
    assert all(isinstance(v, int) for v in results.values()), results
    assert results["anchor_audit_chain"] == 1 and results["backup_on_schedule"] == 1
    assert len(fake.messages("CAUDIT")) == 1
    assert len(list((tmp_path / "backups").glob("resolvemeq-*.dump"))) == 1
    again = periodic.run_once(runtime, client)  # a day is not over: nothing owed twice
    assert again["anchor_audit_chain"] == 0 and again["backup_on_schedule"] == 0


def test_without_alerts_channel_no_alert_job_runs_or_is_scheduled(runtime, fake):
    client = make_web_client(runtime.settings, timeout=2)
    assert runtime.settings.alerts_channel is None
    assert set(periodic.run_once(runtime, client)) == {"sweep_new_tickets", "deliver_outbox",
                                                       "expire_rollback_requests",
                                                       "expire_clarifications", "check_sla", "roll_up_stats"}
    assert periodic.startup_notes(runtime.settings) == [
        "alert evaluation is off: ALERTS_CHANNEL is not set. Set it to the channel alerts go "
        "to and invite the bot there; the bot serves without it"]
    from jobs.celery_app import create_celery

    without = create_celery(load_settings(database_url="sqlite://", redis_url=BROKER_URL))
    with_channel = create_celery(load_settings(database_url="sqlite://", redis_url=BROKER_URL,
                                               alerts_channel="CALERTS"))
    assert "evaluate_alerts" not in without.conf.beat_schedule
    assert set(with_channel.conf.beat_schedule) == {"sweep_new_tickets", "deliver_outbox",
                                                    "evaluate_alerts", "expire_rollback_requests",
                                                    "expire_clarifications", "check_sla", "roll_up_stats"}
    configured = load_settings(database_url="sqlite://", alerts_channel="CALERTS")
    assert periodic.startup_notes(configured) == []
    everything = configured.model_copy(update={"audit_channel": "CAUDIT", "retention_days": 30,
                                               "backup_dir": "/tmp"})
    assert set(periodic.jobs_for(everything)) == set(periodic.JOBS)
    assert set(periodic.jobs_for(configured)) == {"sweep_new_tickets", "deliver_outbox",
                                                  "evaluate_alerts", "expire_rollback_requests",
                                                  "expire_clarifications", "check_sla", "roll_up_stats"}


# Real workers ------------------------------------------------------------------------

@pytest.fixture()
def broker():
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield BROKER_URL
    client.flushdb()


def _enqueue(n: int, *, task: str = "resolvemeq.deliver_outbox") -> None:
    from jobs.celery_app import create_celery

    app = create_celery(load_settings(database_url="sqlite://", redis_url=BROKER_URL))
    for _ in range(n):
        app.send_task(task)


def test_two_workers_racing_over_1000_follow_ups_send_exactly_1000(
    pg_url, pg_engine, fake, broker, committing_factory
):
    now = datetime.now(UTC)
    seed_due_followups(pg_engine, 1000, created=now - timedelta(days=2), delay=timedelta(hours=24))
    workers = [Worker(database_url=pg_url, slack=fake, name=f"w{i}").start() for i in range(2)]
    try:
        _enqueue(8)
        wait_until(lambda: sent_count(pg_engine) == 1000, timeout=180, interval=0.5,
                   what="1000 follow-ups recorded sent")
    finally:
        for worker in workers:
            worker.stop()
    posts = [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]
    ids = [c.args["metadata"]["event_payload"]["resolution_id"] for c in posts]
    assert len(ids) == 1000 and len(set(ids)) == 1000


def test_one_beat_tick_shares_a_backlog_of_follow_ups_between_senders(
    pg_url, pg_engine, fake, broker, committing_factory
):
    now = datetime.now(UTC)
    seed_due_followups(pg_engine, 600, created=now - timedelta(days=2), delay=timedelta(hours=24))
    workers = [Worker(database_url=pg_url, slack=fake, name=f"w{i}").start() for i in range(2)]
    try:
        before = fake.connections()
        _enqueue(1)  # what beat sends once per JOB_INTERVAL
        wait_until(lambda: sent_count(pg_engine) == 600, timeout=180, interval=0.5,
                   what="600 follow-ups recorded sent after one tick")
    finally:
        for worker in workers:
            worker.stop()
    posts = [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]
    ids = [c.args["metadata"]["event_payload"]["resolution_id"] for c in posts]
    assert len(ids) == 600 and len(set(ids)) == 600
    # The tick's pass asked for helpers: more than one sender (each on a keep-alive
    # connection of its own) shared the DMs; one sender alone reuses one connection.
    assert fake.connections() - before >= 2


def test_a_worker_killed_mid_send_leaves_each_dm_sent_exactly_once(
    pg_url, pg_engine, fake, broker, committing_factory
):
    now = datetime.now(UTC)
    seed_due_followups(pg_engine, 6, created=now - timedelta(days=2), delay=timedelta(hours=24))
    # Slack is slow: the first worker will be inside a send when it is killed.
    fake.delay("chat.postMessage", 2.0, times=2)
    first = Worker(database_url=pg_url, slack=fake, name="doomed", CLAIM_TTL="4s").start()
    try:
        _enqueue(1)
        wait_until(lambda: fake.calls("chat.postMessage"), timeout=60, what="the first send")
        time.sleep(0.5)  # inside chat.postMessage, which Slack is slow to answer
        first.kill()
    finally:
        first.stop()
    assert sent_count(pg_engine) < 6
    second = Worker(database_url=pg_url, slack=fake, name="heir", CLAIM_TTL="4s").start()
    try:
        def all_sent():
            _enqueue(1)  # what beat would do every interval
            return sent_count(pg_engine) == 6

        wait_until(all_sent, timeout=90, interval=1.5, what="every follow-up sent")
    finally:
        second.stop()
    posts = [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]
    ids = [c.args["metadata"]["event_payload"]["resolution_id"] for c in posts]
    assert sorted(set(ids)) == sorted(ids) and len(ids) == 6


def test_a_worker_sends_an_unanswered_clarification_to_people(
    pg_url, fake, broker, committing_factory
):
    asked_at = datetime.now(UTC) - timedelta(hours=25)
    with transaction(committing_factory) as session:
        action = make_action(session, action_type=ActionType.REQUEST_CLARIFICATION, now=asked_at,
                             user_id="UREQ")
        ticket = session.get(Ticket, action.ticket_id)
        ticket.slack_channel_id, ticket.slack_thread_ts = "CHELP", "1732528000.000200"
        ticket.source = TicketSource.MENTION
        ticket_id = ticket.ticket_id
    worker = Worker(database_url=pg_url, slack=fake, name="clarify").start()
    try:
        _enqueue(1, task="resolvemeq.expire_clarifications")

        def escalated():
            with transaction(committing_factory) as session:
                return session.get(Ticket, ticket_id).status == TicketStatus.ESCALATED

        wait_until(escalated, timeout=60, interval=0.5, what="the ticket sent to people")
        wait_until(lambda: fake.messages("CHELP"), timeout=30, what="the requester told")
    finally:
        worker.stop()
    [told] = fake.messages("CHELP")
    assert told["thread_ts"] == "1732528000.000200"
    assert "no reply to the bot's questions within 24 hours" in told["text"]
