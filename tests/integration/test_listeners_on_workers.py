"""With DECIDE_ON=workers, the requester's side hands its decisions to the workers too:
the real app in this process publishing to the test broker (real Redis), the task then
run as a worker runs it (jobs/tasks.py), real PostgreSQL, the fake Slack.

A ticket from a :ticket: reaction is a `new` decision carrying the word that it is open
(sent by the worker first, so it comes before the answer in the thread); Add detail on
a ticket nobody has is a `detail` decision. The serving process decides nothing.
"""

from __future__ import annotations

import base64
import json

import pytest
import redis
from sqlalchemy import select

from bot.delivery.slack_client import make_web_client
from bot.views import ActionId, BlockId, ticket_value
from bot.workflows.runtime import Runtime
from models import ActionHistory, Ticket, TicketMessage
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.harness import CHANNEL, REQUESTER, VPN, shown, wait_until
from tests.support.jobs_harness import BROKER_URL

DECIDE = "resolvemeq.decide_ticket"
AUTHOR = "UAUTHOR"


@pytest.fixture()
def broker():
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture()
def on_workers(pg_url, slack, namespace, broker, committing_factory, monkeypatch):
    """The app as `serve` builds it with DECIDE_ON=workers; and a worker's task context."""
    runtime = Runtime.from_settings(
        listener_settings(database_url=pg_url, slack=slack, redis_url=BROKER_URL, decide_on="workers"),
        namespace=namespace)
    from jobs import tasks

    monkeypatch.setattr(tasks, "_context", (runtime, make_web_client(runtime.settings, timeout=2)))
    with in_process(runtime, slack) as app:
        yield app
    slack.reset()


def _published(broker) -> list[tuple[list, dict]]:
    """The decision tasks published, oldest first: (args, kwargs); taken off the queue."""
    found = []
    while (raw := broker.rpop("celery")) is not None:
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert message["headers"]["task"] == DECIDE
        found.append((args, kwargs))
    return found


def _run(args, kwargs) -> str:
    from jobs import tasks

    return tasks.decide_ticket.run(*args, **kwargs)


def _actions(sessions, ticket_id) -> list[ActionHistory]:
    with sessions() as session:
        return list(session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)
                                    .order_by(ActionHistory.executed_at)))


def test_a_ticket_from_a_reaction_is_decided_by_a_worker_which_says_it_is_open_first(
        on_workers, slack, broker, committing_factory):
    ts = slack.post_as_person(CHANNEL, AUTHOR, VPN)
    on_workers.event({"type": "reaction_added", "user": "UHELPER", "reaction": "ticket",
                      "item_user": AUTHOR, "item": {"type": "message", "channel": CHANNEL, "ts": ts},
                      "event_ts": "1764400100.000100"})
    on_workers.settled()
    with committing_factory() as session:
        ticket = session.scalars(select(Ticket)).one()
    [(args, kwargs)] = _published(broker)
    assert args == [ticket.ticket_id] and kwargs["kind"] == "new" and len(kwargs["owed"]) == 1
    # serve stored it and handed it off: nothing said or decided there.
    assert slack.calls("chat.postMessage") == [] and _actions(committing_factory, ticket.ticket_id) == []

    assert _run(args, kwargs) == "decided"
    assert _run(args, kwargs) == "already decided"  # delivered twice: once
    thread = [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == ts]
    assert len(thread) == 2 and "I've opened ticket" in thread[0]["text"]
    assert f"#{ticket.ticket_id}" in shown(thread[1])
    assert len(_actions(committing_factory, ticket.ticket_id)) == 1


def test_add_detail_is_a_detail_decision_on_a_worker(on_workers, slack, broker, committing_factory):
    on_workers.command("/ticket", "help")
    on_workers.settled()
    [(args, kwargs)] = _published(broker)
    assert _run(args, kwargs) == "decided"
    ticket_id = args[0]
    first = [a.id for a in _actions(committing_factory, ticket_id)]

    on_workers.home_click(ActionId.MY_ADD_DETAIL, ticket_value(ticket_id))
    modal = wait_until(lambda: slack.calls("views.open"), what="the modal")[0].response["view"]
    on_workers.submit_view(modal, {BlockId.DETAIL_TEXT: {ActionId.DETAIL_TEXT: VPN}})
    on_workers.settled()
    wait_until(lambda: broker.llen("celery") > 0, what="the detail's decision published")
    [(args, kwargs)] = _published(broker)
    assert (args, kwargs["kind"]) == ([ticket_id], "detail")
    assert [a.id for a in _actions(committing_factory, ticket_id)] == first  # not decided by serve

    assert _run(args, kwargs) == "decided"
    assert _run(args, kwargs) == "already decided"
    decided = _actions(committing_factory, ticket_id)
    assert len(decided) == len(first) + 1 and decided[-1].action_type == "AUTO_RESOLVE"
    with committing_factory() as session:
        [detail] = session.scalars(select(TicketMessage)).all()
    assert (detail.author_id, detail.decided_action_id) == (REQUESTER, decided[-1].id)
