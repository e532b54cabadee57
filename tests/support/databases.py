"""The test servers: which PostgreSQL and Redis the tests use, and how a database is
made fresh or emptied between end-to-end tests. Environment:

    TEST_POSTGRES_URL: server URL without a database name
        (default postgresql+psycopg2://postgres@127.0.0.1:5432).
    TEST_DATABASE_NAME: the database to (re)create (default resolvemeq_test; the
        end-to-end database is this name with `_e2e`).
    TEST_REDIS_URL: a Redis database the tests may use (default redis://127.0.0.1:6379/15).
    TEST_E2E_REDIS_URL: the end-to-end servers' Redis database (default .../14), emptied
        between tests.
    TEST_BROKER_URL: the Celery broker of the real-worker tests (default .../4), emptied.

Two checkouts can run their suites side by side on one machine by giving each its own
TEST_DATABASE_NAME and Redis databases.
"""

from __future__ import annotations

import os
import time

from sqlalchemy import create_engine, text

from models import Base

PG_SERVER = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432"
).rstrip("/")
PG_DATABASE = os.environ.get("TEST_DATABASE_NAME", "resolvemeq_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
E2E_REDIS_URL = os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/14")


def recreate_database(name: str, server: str = PG_SERVER) -> str:
    """Drop (closing its connections) and create database `name` on `server` (the
    tests' unless given: bench has its own); returns its URL."""
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server}/{name}"


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
