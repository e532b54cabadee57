"""Engine, session factory and the unit of work.

The request or the job owns the transaction (`transaction`); services only flush.
Work that only reads may say so (`read_transaction`): on SQLite it then does not wait
for the write lock every other transaction takes at its start.
"""

from __future__ import annotations

import re
import select
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, Result, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

# Execution option naming a transaction that only reads (`read_transaction`).
READ_ONLY = "resolvemeq_read_only"
# Execution option bounding a statement's lock waits on PostgreSQL (`bounded_lock_wait`).
LOCK_WAIT = "resolvemeq_lock_wait"
_LOCK_WAIT_FORMAT = re.compile(r"\d{1,5}(ms|s)")
# Execution option: statements sent ahead of a statement in its round trip (`preceded_by`).
PRECEDED_BY = "resolvemeq_preceded_by"
# Statements sent ahead, compiled, by identity (a handful in the app, each built once;
# the entry keeps its statement, so the id is not reused while it is cached).
_AHEAD_COMPILED: dict[tuple[int, str], tuple[Any, Any]] = {}
_AHEAD_CACHE_SIZE = 100
# How long a SQLite transaction waits for another's write lock before failing.
SQLITE_BUSY_TIMEOUT = 30
# Seconds a PostgreSQL connection is kept before the pool replaces it: well inside the
# idle timeouts of the proxies and firewalls that drop connections without a word.
POOL_RECYCLE = 1800


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine for PostgreSQL or a SQLite file.

    Args:
        url: a SQLAlchemy URL.
        **kwargs: passed on to `create_engine`.
    """
    # A statement's parameters are what people typed (tickets, feedback, reasons); an
    # error message that carried them would put their words in the logs and Sentry.
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        _serialise_sqlite_writers(engine)
        return engine
    # No liveness ping (`pool_pre_ping`: a `SELECT 1` round trip at every checkout):
    # connections are replaced after POOL_RECYCLE, and one the server has closed (a
    # backend terminated, a restart, a proxy's idle timeout) is found at checkout
    # without a round trip and replaced (`_replace_closed_connections`).
    kwargs.setdefault("pool_recycle", POOL_RECYCLE)
    # Short: a database that drops packets must fail a Slack request inside its 3 s,
    # so the person hears "nothing was saved" rather than Slack's own timeout.
    kwargs.setdefault("connect_args", {"connect_timeout": 2})
    engine = create_engine(url, **kwargs)
    _replace_closed_connections(engine)
    _bound_lock_waits(engine)
    return engine


def bounded_lock_wait(wait: str) -> dict[str, str]:
    """Execution options for a statement that may wait for row locks at most `wait`
    ("2s", "500ms") on PostgreSQL, and so may every later statement of its transaction.

    The bound rides in the statement's own round trip (a `SET LOCAL lock_timeout`
    sent with it), where a statement of its own would cost one more. For the request
    path, whose whole transaction must end inside Slack's 3 s. SQLite ignores it.

    Raises:
        ValueError: `wait` is not a number of seconds or milliseconds.
    """
    if not _LOCK_WAIT_FORMAT.fullmatch(wait):
        raise ValueError(f"not a lock wait: {wait!r}")
    return {LOCK_WAIT: wait}


def preceded_by(*statements: Executable) -> dict[str, tuple[Executable, ...]]:
    """Execution options sending `statements` ahead of a statement, in its own query
    string on PostgreSQL: one round trip for all of them.

    psycopg2 returns only the last statement's rows, so the ones ahead are for their
    effects (a lock). Their parameters are the statement's own, by name (`bindparam`
    with no value, given at execution); build them once, they are compiled once. In
    READ COMMITTED each statement of the string takes its own snapshot, so the
    statement after them sees what was committed before a lock they waited for was
    granted, which a single statement does not (its snapshot is taken before it
    waits). PostgreSQL only: elsewhere the caller does without them.
    """
    return {PRECEDED_BY: statements}


def _bound_lock_waits(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _with_lock_timeout(conn, _cursor, statement, parameters, context, many):
        options = context.execution_options if context is not None else {}
        ahead = options.get(PRECEDED_BY)
        if ahead:
            if many or not isinstance(parameters, dict):
                raise ValueError("statements ahead of an executemany are not supported")
            statement = "; ".join((*_rendered(conn.dialect, ahead, parameters), statement))
        wait = options.get(LOCK_WAIT)
        if wait and _LOCK_WAIT_FORMAT.fullmatch(wait):
            # psycopg2 sends both in one query string and returns the last one's rows.
            statement = f"SET LOCAL lock_timeout = '{wait}'; {statement}"
        return statement, parameters


def _rendered(dialect, statements, parameters: dict) -> list[str]:
    """`statements` compiled for psycopg2 (pyformat), once each (a statement to send
    ahead is built once and kept); their parameters are the statement's own, by name."""
    texts = []
    for ahead in statements:
        key = (id(ahead), dialect.driver)
        cached = _AHEAD_COMPILED.get(key)
        if cached is None or cached[0] is not ahead:
            if len(_AHEAD_COMPILED) >= _AHEAD_CACHE_SIZE:
                _AHEAD_COMPILED.clear()
            cached = _AHEAD_COMPILED[key] = (ahead, ahead.compile(dialect=dialect))
        compiled = cached[1]
        missing = sorted(set(compiled.binds) - parameters.keys())
        if missing:
            raise ValueError(f"a statement sent ahead takes its parameters from the statement "
                             f"it precedes, by name; missing: {missing}")
        texts.append(compiled.string)
    return texts


def _replace_closed_connections(engine: Engine) -> None:
    """At checkout, give up a pooled connection the server has closed; the pool then
    takes another (or opens one), so the request never sees the dead one.

    A server that ends a connection (`pg_terminate_backend`, a shutdown, an idle
    timeout) says so and closes the socket: an idle pooled connection then has
    something to read. A healthy idle one has nothing (we LISTEN to nothing), so a
    poll with no wait tells them apart, with no round trip. What it cannot see (a
    network that drops packets without a word) fails the request as an outage
    ("nothing was saved"), and SQLAlchemy then replaces every older connection.
    """

    @event.listens_for(engine, "checkout")
    def _closed_by_the_server(dbapi_connection, _record, _proxy):
        if _has_pending_input(dbapi_connection):
            # The pool's documented signal: discard this one and check out another.
            raise DisconnectionError("the database server closed this pooled connection")


def _has_pending_input(dbapi_connection) -> bool:
    """Whether the server sent anything (an error, an EOF) to an idle connection."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # closed already on our side
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _serialise_sqlite_writers(engine: Engine) -> None:
    """Make every SQLite transaction that may write take the write lock at its start.

    SQLite ignores FOR UPDATE, and the driver on its own sends BEGIN only before the
    first write, so a check-then-write read its check outside any transaction: two
    double-clicked Confirms both read "not rolled back" and both wrote. With the
    driver's BEGIN turned off, each transaction starts with our BEGIN IMMEDIATE: it
    waits (up to the busy timeout) for the writer before it, then reads what that one
    committed, which is what the row locks give on PostgreSQL. A transaction marked
    `READ_ONLY` starts with a plain (deferred) BEGIN instead: in WAL mode it reads a
    snapshot without waiting for anyone, and `query_only` makes any write in it fail.
    """

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # Autocommit for the driver: it sends no BEGIN and no COMMIT of its own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        read_only = bool(connection.get_execution_options().get(READ_ONLY, False))
        # The pragma outlives the transaction: set it only when the kind changes.
        info = connection.connection.info
        if info.get(READ_ONLY) != read_only:
            connection.exec_driver_sql(f"PRAGMA query_only={'ON' if read_only else 'OFF'}")
            info[READ_ONLY] = read_only
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (views render after the commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that only reads (figures, the App Home, a sweep's list of ids).

    On SQLite it does not wait for the write lock, and writing in it fails; on
    PostgreSQL it is an ordinary transaction. It is rolled back at the end.
    """
    session = factory()
    try:
        session.connection(execution_options={READ_ONLY: True})
        yield session
    finally:
        session.rollback()
        session.close()


class UnitOfWork:
    """One transaction whose owner says how it ends: `commit()`, or `fail(error)`.

    `fail` rolls back, except after an error whose `keep_writes` is true (a denial that
    must stay audited): then what was flushed before it is committed. Either way the
    session is closed; once it has ended, `commit` and `fail` do nothing.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._ended = False
        self._committed = False

    @property
    def committed(self) -> bool:
        """True once `commit()` has succeeded: what was flushed is saved."""
        return self._committed

    def commit(self) -> None:
        """Commit what was flushed and close the session.

        Raises:
            SQLAlchemyError: the commit failed (the transaction is rolled back).
        """
        if self._ended:
            return
        self._ended = True
        try:
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        finally:
            self.session.close()
        self._committed = True

    def fail(self, error: BaseException) -> None:
        """End after `error`: roll back, or keep the audited denial it marks.

        Raises:
            SQLAlchemyError: keeping the denial failed (nothing is kept).
        """
        if self._ended:
            return
        if getattr(error, "keep_writes", False):
            self.commit()
            return
        self._ended = True
        try:
            self.session.rollback()
        finally:
            self.session.close()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Own one transaction: commit on success, roll back on error.

    An error whose `keep_writes` is true (a denial that must stay audited) commits what
    was flushed before it was raised, then propagates.
    """
    work = UnitOfWork(factory())
    try:
        yield work.session
    except BaseException as error:
        work.fail(error)
        raise
    work.commit()


# PostgreSQL's own error text quotes the row too: "DETAIL: Failing row contains (...)",
# "Key (event_id)=(...)", a "LINE 1: ..." excerpt of the statement with its values
# (psycopg2 binds them client-side), and data errors name the value ('invalid input
# syntax for type integer: "..."'). Only the first line of the primary message is kept,
# cut before the value for those classes; the exception's class still names the SQLSTATE.
_QUOTES_THE_VALUE = ("22",)  # data exceptions
_FREE_TEXT = ("P0",)  # RAISE in a PL/pgSQL function or trigger: any text, any value


@event.listens_for(Engine, "handle_error")
def _without_row_data(context: ExceptionContext) -> None:
    """Strip row data from a PostgreSQL error before anyone logs it (every engine)."""
    original = context.original_exception
    code = getattr(original, "pgcode", None)
    if not isinstance(code, str):
        return  # not a server error (SQLite's and connection errors quote no row data)
    cleaned = redacted_message(code, str(original))
    original.args = (cleaned,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        # The same shape SQLAlchemy gives it: "(module.Class) message".
        kind = type(original)
        wrapped.args = (f"({kind.__module__}.{kind.__name__}) {cleaned}",)


def redacted_message(sqlstate: str, message: str) -> str:
    """A PostgreSQL error message without the row data it may quote.

    Args:
        sqlstate: the error's SQLSTATE (psycopg2's `pgcode`).
        message: the server's full message (primary line, DETAIL, LINE, HINT...).

    Returns:
        The primary line alone; for data exceptions the part before the quoted value;
        for a PL/pgSQL RAISE nothing of its text.
    """
    primary = message.strip().split("\n", 1)[0].removeprefix("ERROR:").strip()
    if sqlstate.startswith(_FREE_TEXT):
        return "raised by a database function or trigger (its text is not shown)"
    if sqlstate.startswith(_QUOTES_THE_VALUE):
        primary = primary.split(":", 1)[0]
    return primary


def rowcount(result: Result) -> int:
    """How many rows an UPDATE or DELETE matched (SQLAlchemy types `execute` as a
    plain Result; a DML statement's result is a CursorResult, which counts them)."""
    return cast(CursorResult, result).rowcount
