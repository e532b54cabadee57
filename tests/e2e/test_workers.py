"""Decisions on the Celery workers: `serve` with REDIS_URL stores and acknowledges, a
real `resolvemeq worker` decides, and a decision is made once however often its task
is delivered or whoever dies in the middle of it.

`serve` and the workers share the test broker (TEST_BROKER_URL) and the end-to-end
database; this process plays beat where a test needs the sweep.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from bot.core.settings import load_settings
from models import ActionHistory, Ticket, TicketStatus
from tests.support.databases import clean_e2e
from tests.support.fake_agent import OK, running_fake_agent, slow
from tests.support.harness import CHANNEL, Server, wait_until
from tests.support.jobs_harness import BROKER_URL, Worker

PASSWORD = "I forgot my password and can't log in"
DECIDE = "resolvemeq.decide_ticket"


@pytest.fixture()
def broker():
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture()
def on_workers(slack, e2e_db_url, e2e_engine, broker):
    """`serve` with REDIS_URL and DECIDE_ON unset: decisions go to the workers."""
    running = Server(database_url=e2e_db_url, slack=slack, redis_url=BROKER_URL, DECIDE_ON="").start()
    yield running
    running.stop()
    clean_e2e(e2e_engine)
    slack.reset()


def _queued(broker) -> list[tuple[str, list]]:
    """The tasks waiting in the broker's default queue: (name, args), oldest first."""
    found = []
    for raw in reversed(broker.lrange("celery", 0, -1)):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], args))
    return found


def _idle(broker) -> bool:
    """Nothing waiting and nothing delivered but not yet acknowledged."""
    return broker.llen("celery") == 0 and broker.hlen("unacked") == 0


def _publish(task: str, *args) -> None:
    from jobs.celery_app import create_celery

    app = create_celery(load_settings(database_url="sqlite://", redis_url=BROKER_URL))
    app.send_task(task, args=list(args))
    app.close()


def _ticket(sessions) -> Ticket:
    with sessions() as session:
        [ticket] = session.scalars(select(Ticket)).all()
        return ticket


def _actions(sessions, ticket_id: int) -> list[ActionHistory]:
    with sessions() as session:
        return list(session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)))


def _answers(slack) -> list[dict]:
    """The bot's answers in the channel (its ticket acknowledgements are ephemeral)."""
    return [m for m in slack.messages(CHANNEL) if m.get("bot_id")]


def _workers(e2e_db_url, slack, *names: str, **env: str) -> list[Worker]:
    return [Worker(database_url=e2e_db_url, slack=slack, name=name, **env).start() for name in names]


def _stop(workers: list[Worker]) -> None:
    for worker in workers:
        worker.stop()


def test_serve_with_redis_acknowledges_and_a_worker_decides(on_workers, slack, broker, e2e_sessions):
    answer = on_workers.command("/ticket", PASSWORD)
    assert answer.status_code == 200
    ticket = _ticket(e2e_sessions)
    assert f"ticket #{ticket.ticket_id}. I'm looking into it" in answer.json()["text"]
    # The server stored it and handed it off: nothing decided there, the task waits.
    assert _queued(broker) == [(DECIDE, [ticket.ticket_id])]
    time.sleep(1.0)
    assert _ticket(e2e_sessions).status == TicketStatus.NEW
    assert _actions(e2e_sessions, ticket.ticket_id) == []
    assert slack.calls("chat.postMessage") == []

    workers = _workers(on_workers.env["DATABASE_URL"], slack, "decider")
    try:
        wait_until(lambda: _answers(slack), timeout=60, what="the worker's answer")
        wait_until(lambda: _idle(broker), timeout=10, what="the task acknowledged")
    finally:
        _stop(workers)
    decided = _ticket(e2e_sessions)
    assert decided.status != TicketStatus.NEW and decided.agent_processed
    assert len(_actions(e2e_sessions, ticket.ticket_id)) == 1
    [posted] = _answers(slack)
    assert "password" in json.dumps(posted).lower()


def test_a_decision_task_delivered_twice_decides_once(on_workers, slack, broker, e2e_sessions):
    on_workers.command("/ticket", PASSWORD)
    ticket_id = _ticket(e2e_sessions).ticket_id
    _publish(DECIDE, ticket_id)  # the same task again, as a redelivery would bring it
    assert _queued(broker) == [(DECIDE, [ticket_id]), (DECIDE, [ticket_id])]
    workers = _workers(on_workers.env["DATABASE_URL"], slack, "one", "two")
    try:
        wait_until(lambda: _answers(slack), timeout=60, what="an answer")
        wait_until(lambda: _idle(broker), timeout=30, what="both tasks run")
        time.sleep(0.5)
    finally:
        _stop(workers)
    assert len(_actions(e2e_sessions, ticket_id)) == 1
    assert len(_answers(slack)) == 1


def test_a_worker_killed_mid_decision_leaves_it_to_the_sweep_which_decides_once(
    on_workers, slack, broker, e2e_sessions
):
    grace, ttl = 10, 15
    with running_fake_agent() as agent:
        # The first worker's agent call never comes back before it is killed.
        agent.answer(slow(30), then=OK)
        env = {"AGENT_URL": agent.url, "AGENT_TIMEOUT": "40", "AGENT_RETRIES": "0",
               "CLAIM_TTL": f"{ttl}s", "SWEEP_GRACE": f"{grace}s"}
        on_workers.command("/ticket", "My VPN keeps disconnecting when I work from home")
        ticket_id = _ticket(e2e_sessions).ticket_id
        [doomed] = _workers(on_workers.env["DATABASE_URL"], slack, "doomed", **env)
        heirs: list[Worker] = []
        try:
            wait_until(lambda: agent.count == 1, timeout=60, what="the agent asked")
            # Another worker, up and idle: the sweep's task goes to it.
            heirs = _workers(on_workers.env["DATABASE_URL"], slack, "heir", **env)

            def heir_listens() -> bool:  # a sweep (finding nothing claimable) is taken at once
                _publish("resolvemeq.sweep_new_tickets")
                time.sleep(0.5)
                return broker.llen("celery") == 0

            wait_until(heir_listens, timeout=60, interval=0.5, what="the second worker up")
            doomed.kill()
            held = _ticket(e2e_sessions)
            assert held.status == TicketStatus.NEW and held.claim_token is not None  # mid-decision
            # The task was delivered and is never acknowledged: the broker would hand it
            # out again only after its visibility timeout (600 s). The sweep does not wait.
            assert broker.hlen("unacked") == 1

            def swept() -> bool:
                _publish("resolvemeq.sweep_new_tickets")  # what beat does each JOB_INTERVAL
                return bool(_actions(e2e_sessions, ticket_id))

            wait_until(swept, timeout=60, interval=1.0, what="the sweep's decision")
            wait_until(lambda: _answers(slack), timeout=30, what="the answer posted")
            # The redelivery comes at last: it finds the ticket decided.
            _publish(DECIDE, ticket_id)
            wait_until(lambda: broker.llen("celery") == 0, timeout=30, what="the tasks taken")
            time.sleep(2.0)
        finally:
            doomed.stop()
            _stop(heirs)
    [action] = _actions(e2e_sessions, ticket_id)
    assert len(_answers(slack)) == 1
    assert agent.count == 2  # the dead attempt and the sweep's; the redelivery asked nothing
    decided = _ticket(e2e_sessions)
    assert decided.status != TicketStatus.NEW and decided.claim_token is None
    # Decided by the sweep as soon as it may: SWEEP_GRACE after the ticket was stored and
    # the dead worker's claim (CLAIM_TTL) had run out; not after the broker's 600 s.
    due = max(held.created_at + timedelta(seconds=grace), held.claimed_until)
    assert due <= action.executed_at < due + timedelta(seconds=5), (due, action.executed_at)


def _queued_kinds(broker) -> list[tuple[list, str]]:
    """The decision tasks waiting: (args, kind), oldest first."""
    found = []
    for raw in reversed(broker.lrange("celery", 0, -1)):
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        if message["headers"]["task"] == DECIDE:
            found.append((args, kwargs.get("kind", "new")))
    return found


def test_a_reply_in_the_thread_is_re_decided_by_a_worker(on_workers, slack, broker, e2e_sessions):
    dm, asked_ts = "D0REQUESTER", "1732528000.000200"

    def _dm(text, ts, **extra):
        return {"type": "message", "channel_type": "im", "channel": dm, "user": "UREQUESTER",
                "text": text, "ts": ts, "event_ts": ts, **extra}

    workers = _workers(on_workers.env["DATABASE_URL"], slack, "first")
    try:
        assert on_workers.event(_dm("help", asked_ts)).status_code == 200
        wait_until(lambda: _ticket(e2e_sessions).status == TicketStatus.AWAITING_USER, timeout=60,
                   what="the worker's question")
        wait_until(lambda: _idle(broker), timeout=10, what="the task acknowledged")
    finally:
        _stop(workers)
    ticket_id = _ticket(e2e_sessions).ticket_id
    [question] = slack.calls("chat.postMessage")
    assert "Reply in this thread" in json.dumps(question.args)

    reply = _dm("My VPN keeps disconnecting when I work from home", "1732528100.000300",
                thread_ts=asked_ts)
    assert on_workers.event(reply, event_id="Ev0REPLY").status_code == 200
    # serve stored the reply and handed its re-decision to the workers, saying which kind.
    assert _queued_kinds(broker) == [([ticket_id], "reply")]
    time.sleep(1.0)
    assert _ticket(e2e_sessions).status == TicketStatus.AWAITING_USER
    assert len(_actions(e2e_sessions, ticket_id)) == 1

    workers = _workers(on_workers.env["DATABASE_URL"], slack, "second")
    try:
        wait_until(lambda: _ticket(e2e_sessions).status == TicketStatus.RESOLVED, timeout=60,
                   what="the worker's re-decision")
        wait_until(lambda: len(slack.calls("chat.postMessage")) >= 2, timeout=30, what="its answer")
        wait_until(lambda: _idle(broker), timeout=10, what="the task acknowledged")
    finally:
        _stop(workers)
    decided = sorted(_actions(e2e_sessions, ticket_id), key=lambda a: a.executed_at)
    assert [a.action_type for a in decided] == ["REQUEST_CLARIFICATION", "AUTO_RESOLVE"]
    answer = slack.calls("chat.postMessage")[1]
    assert (answer.args["channel"], answer.args["thread_ts"]) == (dm, asked_ts)
    assert f"I think I can fix ticket *#{ticket_id}*" in json.dumps(answer.args)
