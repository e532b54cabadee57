"""Engine, session factory and the unit of work.

The request or the job owns the transaction (`transaction`); services only flush.
Work that only reads may say so (`read_transaction`): on SQLite it then does not wait
for the write lock every other transaction takes at its start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# Execution option naming a transaction that only reads (`read_transaction`).
READ_ONLY = "resolvemeq_read_only"
# How long a SQLite transaction waits for another's write lock before failing.
SQLITE_BUSY_TIMEOUT = 30


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine for PostgreSQL or a SQLite file.

    Args:
        url: a SQLAlchemy URL.
        **kwargs: passed on to `create_engine`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        _serialise_sqlite_writers(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # Short: a database that drops packets must fail a Slack request inside its 3 s,
    # so the person hears "nothing was saved" rather than Slack's own timeout.
    kwargs.setdefault("connect_args", {"connect_timeout": 2})
    return create_engine(url, **kwargs)


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
