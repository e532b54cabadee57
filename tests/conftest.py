"""Shared fixtures: a real PostgreSQL database built by the migrations, real Redis.

Each test runs inside an outer transaction that is rolled back at teardown
(`join_transaction_mode="create_savepoint"`), so services may flush and even commit
without leaking into the next test. Tests of concurrency need real commits from
several connections: they use `committing_factory`, which empties the tables after.

Environment:
    TEST_POSTGRES_URL: server URL without a database name
        (default postgresql+psycopg2://postgres@127.0.0.1:5432).
    TEST_DATABASE_NAME: the database to (re)create (default resolvemeq_test).
    TEST_REDIS_URL: a Redis database the tests may use (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bot.platform import migrations
from bot.core.settings import Settings, load_settings
from models import Base
from models.session import make_engine, make_session_factory

# Property and fuzz tests try the same examples on every run, so a red CI always means
# a change broke something; `python -m pytest --hypothesis-profile=explore` searches new
# inputs (and a find becomes a fixed example or a unit test).
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("repeatable")

PG_SERVER = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432"
).rstrip("/")
PG_DATABASE = os.environ.get("TEST_DATABASE_NAME", "resolvemeq_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _recreate_database(name: str) -> str:
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG_SERVER}/{name}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A fresh PostgreSQL database at the head migration (built by Alembic, not create_all)."""
    url = _recreate_database(PG_DATABASE)
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

E2E_REDIS_URL = os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def e2e_db_url() -> str:
    """A database of its own for the server subprocess, which commits for real."""
    url = _recreate_database(f"{PG_DATABASE}_e2e")
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="session")
def e2e_engine(e2e_db_url):
    engine = make_engine(e2e_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def slack():
    from tests.fake_slack import FakeSlack

    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(slack, e2e_db_url):
    """`resolvemeq serve` against the fake Slack, PostgreSQL and Redis (shared by a module)."""
    from tests.harness import Server

    running = Server(database_url=e2e_db_url, slack=slack, redis_url=E2E_REDIS_URL).start()
    yield running
    running.stop()


@pytest.fixture()
def e2e(server, slack, e2e_engine):
    """A clean slate for each end-to-end test: no rows, no Slack calls, no rate-limit hits."""
    yield server
    clean_e2e(e2e_engine)
    slack.reset()


def clean_e2e(engine) -> None:
    """Wait for posts in flight, then empty every table of the e2e database and its Redis."""
    import redis

    _quiesce(engine)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                # The server may still be recording a post it just made; never wait on
                # it forever (a deadlock would leave a dirty database for the next test).
                conn.execute(text("SET LOCAL lock_timeout = '3s'"))
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            break
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.2)
    redis.Redis.from_url(E2E_REDIS_URL).flushdb()


def _quiesce(engine, timeout: float = 10) -> None:
    """Wait until the server has no Slack post in flight (claimed, not yet recorded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            busy = conn.execute(text(
                "SELECT count(*) FROM slack_outbox WHERE status = 'pending' "
                "AND claimed_until IS NOT NULL")).scalar()
        if not busy:
            return
        time.sleep(0.05)


@pytest.fixture()
def e2e_sessions(e2e_engine):
    """Sessions on the server's database, to check what it stored."""
    return make_session_factory(e2e_engine)
