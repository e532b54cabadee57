"""Shared fixtures: a real PostgreSQL database built by the migrations, real Redis.

Each test runs inside an outer transaction that is rolled back at teardown
(`join_transaction_mode="create_savepoint"`), so services may flush and even commit
without leaking into the next test. Tests of concurrency need real commits from
several connections: they use `committing_factory`, which empties the tables after.

Which servers and databases: `tests/support/databases.py` (environment variables).

Layout: `unit/` needs no server; `integration/` talks to PostgreSQL, Redis and the
fake Slack from inside the test process; `e2e/` runs `resolvemeq serve` (and workers)
as subprocesses and speaks to them as Slack does; `support/` holds the fakes and
harness, which `bench/` uses too.
"""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.core.settings import Settings, load_settings
from bot.platform import migrations
from models import Base
from models.session import make_engine, make_session_factory
from tests.support.databases import E2E_REDIS_URL, PG_DATABASE, REDIS_URL, clean_e2e, recreate_database

# Property and fuzz tests try the same examples on every run, so a red CI always means
# a change broke something; `python -m pytest --hypothesis-profile=explore` searches new
# inputs (and a find becomes a fixed example or a unit test).
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("repeatable")



@pytest.fixture(scope="session")
def pg_url() -> str:
    """A fresh PostgreSQL database at the head migration (built by Alembic, not create_all)."""
    url = recreate_database(PG_DATABASE)
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="session")
def pg_engine(pg_url):
    engine = make_engine(pg_url, pool_size=20, max_overflow=20)
    yield engine
    engine.dispose()


@pytest.fixture()
def session(pg_engine) -> Session:
    """A session whose work is rolled back after the test, commits included."""
    connection = pg_engine.connect()
    outer = connection.begin()
    db = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield db
    finally:
        db.close()
        outer.rollback()
        connection.close()


@pytest.fixture()
def committing_factory(pg_engine):
    """A real session factory (real commits, many connections); tables emptied after."""
    yield make_session_factory(pg_engine)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture()
def sqlite_url(tmp_path) -> str:
    """A new SQLite file at the head migration: the embedded default."""
    url = f"sqlite:///{tmp_path / 'resolvemeq.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture()
def sqlite_sessions(sqlite_url):
    """A session factory on a new SQLite file at the head migration."""
    engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def racing_factory(request, tmp_path):
    """Real sessions (real commits, many connections) on each backend in turn, for tests
    of concurrent writers: PostgreSQL (`committing_factory`) and the embedded SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("committing_factory")
        return
    url = f"sqlite:///{tmp_path / 'racing.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture()
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture()
def namespace() -> str:
    """A unique key prefix, so tests sharing one Redis never share a budget."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def settings(pg_url, monkeypatch) -> Settings:
    """Settings as a test would set the environment, isolated from the developer's."""
    for name in list(os.environ):
        if name in Settings.model_fields or name.lower() in Settings.model_fields:
            monkeypatch.delenv(name, raising=False)
    return load_settings(database_url=pg_url, admin_user_ids="UADMIN")


# End to end: the real server in a subprocess ------------------------------------------

@pytest.fixture(scope="session")
def e2e_db_url() -> str:
    """A database of its own for the server subprocess, which commits for real."""
    url = recreate_database(f"{PG_DATABASE}_e2e")
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="session")
def e2e_engine(e2e_db_url):
    engine = make_engine(e2e_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def slack():
    from bot.sandbox.standin import SlackStandIn

    with SlackStandIn() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(slack, e2e_db_url):
    """`resolvemeq serve` against the fake Slack, PostgreSQL and Redis (shared by a module)."""
    from tests.support.harness import Server

    running = Server(database_url=e2e_db_url, slack=slack, redis_url=E2E_REDIS_URL).start()
    yield running
    running.stop()


@pytest.fixture()
def e2e(server, slack, e2e_engine):
    """A clean slate for each end-to-end test: no rows, no Slack calls, no rate-limit hits."""
    yield server
    clean_e2e(e2e_engine)
    slack.reset()


@pytest.fixture()
def e2e_sessions(e2e_engine):
    """Sessions on the server's database, to check what it stored."""
    return make_session_factory(e2e_engine)
