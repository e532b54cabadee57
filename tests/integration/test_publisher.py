"""Decisions published by `serve` (`jobs.dispatch.CeleryDecisions`) through the Redis
transport that keeps one client per channel (`jobs.publisher`): every task reaches the
broker's queue, from many request threads at once."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from bot.core.settings import load_settings
from jobs import publisher
from jobs.dispatch import DECIDE_TASK, CeleryDecisions
from tests.support.jobs_harness import BROKER_URL


@pytest.fixture()
def broker():
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture()
def decisions(pg_url):
    decisions = CeleryDecisions(load_settings(database_url=pg_url, redis_url=BROKER_URL))
    yield decisions
    decisions.close()


def _drop_connections(broker) -> None:
    """Close the connections to the broker's database but this client's (only that
    database's: others share this Redis server)."""
    me = broker.client_id()
    db = broker.connection_pool.connection_kwargs.get("db", 0)
    for client in broker.client_list():
        if int(client["db"]) == db and int(client["id"]) != me:
            broker.client_kill_filter(_id=client["id"])


def _queued(broker) -> list[int]:
    ids = []
    while (raw := broker.rpop("celery")) is not None:
        message = json.loads(raw)
        assert message["headers"]["task"] == DECIDE_TASK
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids


def test_serve_publishes_with_the_client_keeping_transport(decisions):
    with decisions._app.connection_for_write() as connection:
        assert type(connection.transport) is publisher.Transport


def test_every_decision_published_from_many_threads_reaches_the_queue(decisions, broker):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(decisions.dispatch, range(1, 201)))

    assert sorted(_queued(broker)) == list(range(1, 201))


def test_publishing_goes_on_after_the_broker_dropped_the_connections(decisions, broker):
    decisions.dispatch(1)
    _drop_connections(broker)  # as a Redis restart would

    decisions.dispatch(2)

    assert sorted(_queued(broker)) == [1, 2]
