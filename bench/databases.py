"""The benchmarks' own PostgreSQL databases and Redis databases, on loopback only.

A benchmark recreates its database from scratch with the migrations (so it measures
the real schema) under a name that starts with `resolvemeq_bench_`, which is the
only kind of database this module will drop. Environment:

    BENCH_POSTGRES_URL: server URL without a database name
        (default postgresql+psycopg2://postgres@127.0.0.1:5432).
    BENCH_REDIS_URL: the HTTP benchmarks' Redis database (default redis://127.0.0.1:6379/7),
        flushed before a run.

Creating a database is the test suite's `tests.support.databases.recreate_database`.
"""

from __future__ import annotations

import os
import re

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import procstat

PG_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432"
).rstrip("/")
# Not a number the test suite uses by default (15, 14, 4).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_BENCH_DB = re.compile(r"^resolvemeq_bench_[a-z0-9_]{1,40}$")


def require_loopback(url: str) -> str:
    """The URL, if its host is a loopback address (benchmarks never leave the machine).

    Raises:
        SystemExit: with a message naming the host, for any other host.
    """
    host = make_url(url).host
    if host not in _LOOPBACK:
        raise SystemExit(f"refusing {host!r}: benchmarks use loopback addresses only")
    return url


def check_name(name: str) -> str:
    """The name, if it is a bench database's (`resolvemeq_bench_...`, lower case).

    Raises:
        SystemExit: for any other name, so no benchmark drops someone's database.
    """
    if not _BENCH_DB.match(name):
        raise SystemExit(f"{name!r}: a bench database name starts with resolvemeq_bench_ "
                         "(lower-case letters, digits and _ after it)")
    return name


def database_url(name: str) -> str:
    """The URL of database `name` on the bench PostgreSQL server."""
    return f"{PG_SERVER}/{name}"


def admin_url() -> str:
    """The URL of the server's `postgres` database (for CREATE/DROP DATABASE, SHOW)."""
    return require_loopback(database_url("postgres"))


def fresh_database(name: str) -> str:
    """Drop and create a bench database, migrate it to head; returns its URL.

    Its PostgreSQL backends count as this benchmark's services in `procstat.Load`.
    """
    from bot.platform.migrations import upgrade
    from tests.support.databases import recreate_database

    admin_url()  # loopback only
    url = recreate_database(check_name(name), server=PG_SERVER)
    upgrade(url)
    procstat.count_database_as_ours(name)
    return url


def drop_database(name: str) -> None:
    """Drop a bench database (its connections are closed first)."""
    engine = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{check_name(name)}" WITH (FORCE)'))
    finally:
        engine.dispose()


def analyze(url: str) -> None:
    """`VACUUM ANALYZE` a database: fresh statistics and visibility map for the planner."""
    engine = create_engine(require_loopback(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def flush_redis(url: str = REDIS_URL) -> None:
    """Empty one Redis database (a loopback one)."""
    import redis

    require_loopback(url)
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


class PgStats:
    """PostgreSQL's counters for one database: sessions opened, transactions committed.

    Approximate to a second: backends report their counters when idle or on exit.
    """

    def __init__(self, database_url: str) -> None:
        self._engine = create_engine(database_url, pool_size=1, max_overflow=0)

    def read(self) -> dict[str, int]:
        """Sessions, commits and rollbacks of the database so far."""
        with self._engine.connect() as conn:
            row = conn.execute(text(
                "SELECT sessions, xact_commit, xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()")).one()
        return {"sessions": int(row[0]), "commits": int(row[1]), "rollbacks": int(row[2])}

    def close(self) -> None:
        self._engine.dispose()
