"""Count what one request costs the database: statements, commits, rollbacks, pings.

`counting(engine)` listens to the engine around a block and counts, on the calling
thread only (the request's: work handed to the background executors runs on theirs and
is not the request's cost), every statement sent (`before_cursor_execute`), every
commit and rollback that reaches the server (the pool's reset on return included) and every liveness ping
(`pool_pre_ping`'s `SELECT 1`), which reach the driver outside SQLAlchemy's statement
events (so the dialect's `do_commit`, `do_rollback` and `do_ping` are wrapped), and
every connection checked out of the pool. A round trip is any of these but the checkout: each waits for the
server's answer. On PostgreSQL psycopg2 also sends its own `BEGIN` before a
transaction's first statement, invisible to SQLAlchemy; it is one more round trip per
transaction, and is not counted here.

    with counting(runtime.engine) as cost:
        bolt.click(...)
    assert cost.round_trips <= 3 and cost.commits <= 1
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, event


@dataclass
class Cost:
    """What the counted block sent to the database, on its own thread."""

    statements: int = 0
    commits: int = 0
    rollbacks: int = 0
    pings: int = 0
    checkouts: int = 0
    connects: int = 0  # new connections opened (a healthy pooled one is reused)
    sql: list[str] = field(default_factory=list)

    @property
    def round_trips(self) -> int:
        """Statements, liveness pings and rollbacks: everything but the commits."""
        return self.statements + self.pings + self.rollbacks

    def __str__(self) -> str:
        return (f"{self.round_trips} round trips ({self.statements} statements, {self.pings} "
                f"pings, {self.rollbacks} rollbacks) + {self.commits} commits, "
                f"{self.checkouts} checkouts, {self.connects} new connections")


def _in_transaction(connection) -> bool:
    """Whether a rollback reaches the server: psycopg2 sends none on a connection with no
    transaction open (the pool's reset after a commit); other drivers are assumed to."""
    raw = getattr(connection, "dbapi_connection", connection)
    status = getattr(getattr(raw, "info", None), "transaction_status", None)
    return status is None or status != 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE


@contextmanager
def counting(engine: Engine) -> Iterator[Cost]:
    """Count the database work of this thread while the block runs (see the module)."""
    cost = Cost()
    thread = threading.get_ident()

    def mine() -> bool:
        return threading.get_ident() == thread

    def on_statement(_conn, _cursor, statement, *_args) -> None:
        if mine():
            cost.statements += 1
            cost.sql.append(" ".join(statement.split())[:120])

    def on_checkout(*_args) -> None:
        if mine():
            cost.checkouts += 1

    def on_connect(*_args) -> None:
        if mine():
            cost.connects += 1

    # Commits, rollbacks (the pool's reset on return included) and pings are counted
    # where they reach the driver: the dialect's methods, wrapped on this engine's dialect.
    dialect = engine.dialect
    originals = {name: getattr(dialect, name) for name in ("do_commit", "do_rollback", "do_ping")}

    def counted(name: str, attribute: str):
        original = originals[name]

        def call(dbapi_connection, *args, **kwargs):
            if mine() and (attribute != "rollbacks" or _in_transaction(dbapi_connection)):
                setattr(cost, attribute, getattr(cost, attribute) + 1)
            return original(dbapi_connection, *args, **kwargs)
        return call

    listeners = [("before_cursor_execute", on_statement), ("checkout", on_checkout),
                 ("connect", on_connect)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    for name, attribute in (("do_commit", "commits"), ("do_rollback", "rollbacks"), ("do_ping", "pings")):
        setattr(dialect, name, counted(name, attribute))
    try:
        yield cost
    finally:
        for name in originals:
            delattr(dialect, name)  # the class's method again
        for name, listener in listeners:
            event.remove(engine, name, listener)
