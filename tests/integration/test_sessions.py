"""The embedded default's transactions: a writer waits for the one before it, a reader
waits for no one and may not write."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import bindparam, func, literal_column, select, text, update
from sqlalchemy.exc import OperationalError

from models import (
    Ticket,
    make_engine,
    make_session_factory,
    preceded_by,
    read_transaction,
    transaction,
)
from tests.support.factories import make_ticket


@pytest.fixture()
def sqlite_factory(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_a_writer_reads_only_after_the_writer_before_it_committed(sqlite_factory):
    # The check-then-write of every service: without the write lock at BEGIN, the second
    # transaction read "new" while the first was changing it, and both wrote.
    with transaction(sqlite_factory) as session:
        ticket_id = make_ticket(session).ticket_id
    first_read = threading.Event()
    seen: list[str] = []

    def second() -> None:
        first_read.wait(timeout=5)
        with transaction(sqlite_factory) as session:
            seen.append(session.scalar(select(Ticket.status).where(Ticket.ticket_id == ticket_id)))

    thread = threading.Thread(target=second)
    thread.start()
    with transaction(sqlite_factory) as session:
        assert session.scalar(select(Ticket.status).where(Ticket.ticket_id == ticket_id)) == "new"
        first_read.set()
        time.sleep(0.3)  # the second transaction is trying to begin meanwhile
        session.execute(update(Ticket).where(Ticket.ticket_id == ticket_id).values(status="open"))
    thread.join(timeout=10)
    assert seen == ["open"]


def test_a_read_transaction_does_not_wait_for_a_writer_and_cannot_write(sqlite_factory):
    with transaction(sqlite_factory) as session:
        ticket_id = make_ticket(session).ticket_id
    with transaction(sqlite_factory) as writer:
        writer.execute(update(Ticket).where(Ticket.ticket_id == ticket_id).values(status="open"))
        started = time.monotonic()
        with read_transaction(sqlite_factory) as reader:
            # The writer has not committed: the reader sees the last commit, at once.
            assert reader.scalar(select(Ticket.status).where(Ticket.ticket_id == ticket_id)) == "new"
        assert time.monotonic() - started < 1
    with read_transaction(sqlite_factory) as reader:
        with pytest.raises(OperationalError, match="readonly"):
            reader.execute(update(Ticket).values(status="resolved"))
    # The connection goes back to writing for the next transaction that may write.
    with transaction(sqlite_factory) as session:
        session.execute(update(Ticket).values(status="resolved"))
    with read_transaction(sqlite_factory) as reader:
        assert reader.scalar(select(Ticket.status)) == "resolved"


def test_a_read_transaction_on_postgresql_reads(committing_factory):
    with transaction(committing_factory) as session:
        ticket_id = make_ticket(session).ticket_id
    with read_transaction(committing_factory) as reader:
        assert reader.get(Ticket, ticket_id).status == "new"


# ----- statements sent ahead of a statement, in its round trip (PostgreSQL) -----

LOCK_KEY = 7_268_710_361_999  # not the audit chain's


def _waiting_for_an_advisory_lock(factory) -> bool:
    with factory() as session:
        return bool(session.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")))


def test_a_statement_after_a_lock_sent_ahead_sees_what_was_committed_before_it_was_granted(
        committing_factory):
    # One query string, one round trip; the statement after the lock takes its snapshot
    # after the lock was granted, so it reads the holder's commit (a single statement
    # taking the lock would not: its snapshot is taken before it waits).
    with transaction(committing_factory) as session:
        ticket_id = make_ticket(session).ticket_id
    ahead = select(func.pg_advisory_xact_lock(literal_column(str(LOCK_KEY))))
    after_the_lock = (select(Ticket.status).where(Ticket.ticket_id == bindparam("ticket_id"))
                      .execution_options(**preceded_by(ahead)))
    seen: list[str] = []
    holder = committing_factory()
    holder.execute(select(func.pg_advisory_xact_lock(literal_column(str(LOCK_KEY)))))
    holder.execute(update(Ticket).values(status="resolved"))

    def reader() -> None:
        with transaction(committing_factory) as session:
            seen.append(session.scalar(after_the_lock, {"ticket_id": ticket_id}))

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(500):  # until the reader waits for the lock (no timing asserted)
        if _waiting_for_an_advisory_lock(committing_factory):
            break
        time.sleep(0.01)
    holder.commit()
    holder.close()
    thread.join(timeout=10)
    assert seen == ["resolved"]


def test_a_statement_sent_ahead_takes_its_parameters_from_the_statement_by_name(committing_factory):
    ahead = select(Ticket.ticket_id).where(Ticket.user_id == bindparam("someone"))
    statement = select(Ticket.ticket_id).execution_options(**preceded_by(ahead))
    with pytest.raises(ValueError, match="missing: \\['someone'\\]"), transaction(committing_factory) as s:
        s.execute(statement)
    with transaction(committing_factory) as session:
        make_ticket(session, user_id="UREQ")
        assert len(session.execute(
            select(Ticket.ticket_id).where(Ticket.user_id == bindparam("someone"))
            .execution_options(**preceded_by(ahead)), {"someone": "UREQ"}).all()) == 1
