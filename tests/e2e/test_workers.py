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

from bot import views
from bot.core.settings import load_settings
from models import ActionHistory, Ticket, TicketStatus
from tests.support.databases import clean_e2e
from tests.support.fake_agent import OK, running_fake_agent, slow
from tests.support.harness import CHANNEL, ESCALATIONS, Server, resolved_ticket, shown, wait_until
from tests.support.jobs_harness import BROKER_URL, Worker
from tests.support.tcp_proxy import TcpProxy

PASSWORD = "I forgot my password and can't log in"
DECIDE = "resolvemeq.decide_ticket"
REDRAW = "resolvemeq.redraw"


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
    return [(name, args) for name, args, _ in _queued_calls(broker)]


def _queued_calls(broker, queue: str = "celery") -> list[tuple[str, list, dict]]:
    """The tasks waiting in one of the broker's queues: (name, args, kwargs), oldest first."""
    found = []
    for raw in reversed(broker.lrange(queue, 0, -1)):
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], args, kwargs))
    return found


def _idle(broker) -> bool:
    """Nothing waiting and nothing delivered but not yet acknowledged."""
    return broker.llen("celery") == 0 and broker.llen("redraws") == 0 and broker.hlen("unacked") == 0


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


# ----- the work after a click, on the workers ---------------------------------------------


def _posted_resolution(sessions, slack) -> tuple[int, str]:
    """A resolved ticket whose answer is posted in CHANNEL: (ticket id, the message's ts)."""
    from slack_sdk import WebClient

    ticket_id = resolved_ticket(sessions)
    with sessions() as session:
        ticket = session.get_one(Ticket, ticket_id)
        [action] = session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id))
        text, blocks = views.resolution_message(ticket, action, ticket_text=ticket.description)
        ts = WebClient(token=slack.token, base_url=slack.base_url).chat_postMessage(
            channel=CHANNEL, text=text, blocks=blocks)["ts"]
        ticket.slack_message_ts = ts
        session.commit()
    return ticket_id, ts


def _rate(server, ticket_id: int, ts: str, score: int) -> None:
    answer = server.click(views.rating_action_id(score), views.feedback_value(ticket_id, score=score),
                          message_ts=ts)
    assert answer.status_code == 200, answer.text


def _updates(slack, ts: str) -> list:
    return [c for c in slack.calls("chat.update") if c.args.get("ts") == ts]


def _on_screen(slack, ts: str) -> str:
    [message] = [m for m in slack.messages(CHANNEL) if m["ts"] == ts]
    return shown(message)


def test_a_click_is_answered_by_serve_and_its_message_redrawn_by_a_worker(
        on_workers, slack, broker, e2e_sessions):
    ticket_id, ts = _posted_resolution(e2e_sessions, slack)
    _rate(on_workers, ticket_id, ts, 4)
    # serve stored the answer and handed the redraw off, in plain values, on the redraws'
    # own queue (not behind the decisions): nothing drawn there.
    assert _queued_calls(broker) == []
    [(name, args, kwargs)] = _queued_calls(broker, "redraws")
    assert (name, args) == (REDRAW, [])
    assert (kwargs["kind"], kwargs["ticket_id"], kwargs["channel"], kwargs["message_ts"]) == (
        "answer", ticket_id, CHANNEL, ts)
    time.sleep(1.0)
    assert _updates(slack, ts) == []

    workers = _workers(on_workers.env["DATABASE_URL"], slack, "drawer")
    try:
        wait_until(lambda: _updates(slack, ts), timeout=60, what="the worker's redraw")
        wait_until(lambda: _idle(broker), timeout=10, what="the task acknowledged")
    finally:
        _stop(workers)
    assert len(_updates(slack, ts)) == 1
    assert "Rated 4/5" in _on_screen(slack, ts)


def test_an_earlier_clicks_redraw_landing_late_still_leaves_the_last_answer_shown(
        on_workers, slack, broker, e2e_sessions):
    ticket_id, ts = _posted_resolution(e2e_sessions, slack)
    # The first redraw's chat.update lands 4 s late; the second click's redraw, on the
    # worker's other thread, would land first and be overwritten by the older answer
    # but for the message's lock (in Redis: shared by every worker and serve process).
    slack.delay("chat.update", 4.0)
    workers = _workers(on_workers.env["DATABASE_URL"], slack, "drawer")
    try:
        _rate(on_workers, ticket_id, ts, 2)
        # The worker has drawn "2/5" and its chat.update is waiting out the delay.
        wait_until(lambda: slack.faults_left("chat.update") == 0, timeout=60,
                   what="the first redraw sent by the worker")
        _rate(on_workers, ticket_id, ts, 5)
        wait_until(lambda: len(_updates(slack, ts)) == 2, timeout=30, what="both redraws")
        wait_until(lambda: _idle(broker), timeout=10, what="both tasks acknowledged")
    finally:
        _stop(workers)
    first, second = _updates(slack, ts)
    assert "Rated 2/5" in shown(first.args) and "Rated 5/5" in shown(second.args)
    assert "Rated 5/5" in _on_screen(slack, ts)


def test_a_no_redrawn_twice_on_the_workers_tells_the_thread_and_the_team_once(
        on_workers, slack, broker, e2e_sessions):
    ticket_id, ts = _posted_resolution(e2e_sessions, slack)
    answer = on_workers.click(views.ActionId.FEEDBACK_NO, views.feedback_value(ticket_id), message_ts=ts)
    assert answer.status_code == 200, answer.text
    [(_, _, redraw)] = _queued_calls(broker, "redraws")
    assert redraw["owed"] and redraw["ticket_moved"]  # the reopen's notices go with the redraw
    # The same task again, as a redelivery brings it (a worker died before its ack).
    from jobs.celery_app import create_celery

    app = create_celery(load_settings(database_url="sqlite://", redis_url=BROKER_URL))
    app.send_task(REDRAW, kwargs=redraw)
    app.close()
    workers = _workers(on_workers.env["DATABASE_URL"], slack, "one", "two")
    try:
        wait_until(lambda: len(_updates(slack, ts)) >= 2, timeout=60, what="both runs' redraws")
        wait_until(lambda: _idle(broker), timeout=30, what="both tasks acknowledged")
        wait_until(lambda: slack.messages(ESCALATIONS), timeout=10, what="the team's notice")
        time.sleep(0.5)
    finally:
        _stop(workers)
    # Each run drew the message from what is stored: the same answer.
    first, second = _updates(slack, ts)
    assert shown(first.args) == shown(second.args)
    assert "You said it did not" in _on_screen(slack, ts)
    # The notices it owed went out once, whichever run sent them.
    assert len(slack.messages(ESCALATIONS)) == 1
    assert len([m for m in slack.messages(CHANNEL) if m.get("thread_ts") == ts]) == 1


def test_a_click_whose_redraw_the_broker_refuses_is_redrawn_by_serve(
        slack, e2e_db_url, e2e_engine, e2e_sessions, broker):
    broker_url = redis.Redis.from_url(BROKER_URL).connection_pool.connection_kwargs
    with TcpProxy(broker_url["host"], broker_url["port"]) as proxy:
        through = f"redis://127.0.0.1:{proxy.port}/{broker_url['db']}"
        server = Server(database_url=e2e_db_url, slack=slack, redis_url=through, DECIDE_ON="workers").start()
        try:
            ticket_id, ts = _posted_resolution(e2e_sessions, slack)
            proxy.cut()  # the broker (and Redis) refuse connections: nothing can be published
            _rate(server, ticket_id, ts, 3)
            wait_until(lambda: _updates(slack, ts), timeout=30, what="the redraw in serve's pool")
            assert "Rated 3/5" in _on_screen(slack, ts)
            assert "drawing it here" in server.output()
        finally:
            server.stop()
            clean_e2e(e2e_engine)
            slack.reset()
    assert broker.llen("redraws") == 0
