"""Fixtures of the in-process listener tests (test_listeners*.py)."""

from __future__ import annotations

import pytest

from bot.workflows.runtime import Runtime
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL


@pytest.fixture()
def listener_runtime(settings, pg_url, slack, namespace) -> Runtime:
    """The runtime `resolvemeq serve` would build, on the test database (real commits)."""
    return Runtime.from_settings(
        listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL), namespace=namespace)


@pytest.fixture()
def bolt(listener_runtime, slack, committing_factory):
    """The real app, answering in this process. After the test its background work is
    finished, then the tables are emptied (`committing_factory`) and the fake Slack reset."""
    with in_process(listener_runtime, slack) as app:
        yield app
    slack.reset()
