"""Engine, session factory and the unit of work.

The request or the job owns the transaction (`transaction`); services only flush.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine for PostgreSQL or a SQLite file.

    Args:
        url: a SQLAlchemy URL.
        **kwargs: passed on to `create_engine`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # Short: a database that drops packets must fail a Slack request inside its 3 s,
    # so the person hears "nothing was saved" rather than Slack's own timeout.
    kwargs.setdefault("connect_args", {"connect_timeout": 2})
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (views render after the commit)."""
    return sessionmaker(engine, expire_on_commit=False)


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
