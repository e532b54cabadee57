"""A database error never carries what the person typed.

Whatever a failing statement was given (a ticket's text, a feedback note), its error
reaches the log and Sentry: SQLAlchemy's message lists the parameters unless the engine
hides them, and PostgreSQL's own text quotes the failing row ("DETAIL: Failing row
contains (...)"), the statement with its values ("LINE 1: ...") or the value itself.
Each test makes the database refuse a ticket whose text holds a password and reads
everything the error would print.
"""

from __future__ import annotations

import logging
import traceback

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from bot.domain import intake
from models import TicketSource, make_engine
from models.session import redacted_message

PASSWORD = "Hunter2!vpn"
TICKET = f"my vpn password is {PASSWORD} and it stopped working"


def _printed(error: BaseException) -> str:
    """Everything a log line with the traceback would show, chained causes included."""
    return "".join(traceback.format_exception(error))


def _open(session: Session) -> IntegrityError:
    with pytest.raises(IntegrityError) as raised:
        intake.open_ticket(session, user_id="UREQUESTER", text=TICKET,
                           source=TicketSource.SLASH_COMMAND)
    return raised.value


def test_a_check_that_refuses_the_ticket_on_postgresql_shows_no_row(session, caplog):
    # Rolled back with the test's outer transaction, like everything else here.
    session.execute(text("ALTER TABLE tickets ADD CONSTRAINT ck_tickets_test_refuse "
                         "CHECK (description NOT LIKE '%password%')"))
    error = _open(session)
    logging.getLogger("resolvemeq.test").error("could not store the ticket", exc_info=error)

    printed = _printed(error) + caplog.text
    assert PASSWORD not in printed and "Failing row" not in printed
    # Still says what failed, and where.
    assert 'violates check constraint "ck_tickets_test_refuse"' in str(error)
    assert "INSERT INTO tickets" in str(error) and "CheckViolation" in str(error)


def test_a_trigger_that_raises_with_the_row_on_postgresql_shows_nothing_of_it(session):
    session.execute(text("""
        CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused: %', NEW.description; END $$"""))
    session.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON tickets "
                         "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"))
    with pytest.raises(DBAPIError) as raised:
        intake.open_ticket(session, user_id="UREQUESTER", text=TICKET,
                           source=TicketSource.SLASH_COMMAND)
    assert PASSWORD not in _printed(raised.value)
    assert "raised by a database function or trigger" in str(raised.value)


def test_a_value_postgresql_cannot_read_is_not_quoted_back(session):
    with pytest.raises(StatementError) as raised:
        session.execute(text("SELECT CAST(:note AS integer)"), {"note": TICKET})
    printed = _printed(raised.value)
    assert PASSWORD not in printed and "LINE 1" not in printed
    assert "invalid input syntax for type integer" in str(raised.value)


def test_a_trigger_that_refuses_the_ticket_on_sqlite_shows_no_parameters(sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON tickets "
                              "BEGIN SELECT RAISE(ABORT, 'tickets are refused'); END"))
        with Session(engine) as session:
            error = _open(session)
        printed = _printed(error)
        assert PASSWORD not in printed
        assert "tickets are refused" in printed and "parameters hidden" in printed
    finally:
        engine.dispose()


@pytest.mark.parametrize("sqlstate, message, kept", [
    ("23514", 'new row for relation "tickets" violates check constraint "ck"\n'
              "DETAIL:  Failing row contains (1, secret).\n",
     'new row for relation "tickets" violates check constraint "ck"'),
    ("23505", 'duplicate key value violates unique constraint "uq_tickets_event_id"\n'
              "DETAIL:  Key (source_event_id)=(secret) already exists.\n",
     'duplicate key value violates unique constraint "uq_tickets_event_id"'),
    ("22P02", 'invalid input syntax for type integer: "secret"\nLINE 1: SELECT \'secret\'\n',
     "invalid input syntax for type integer"),
    ("22021", 'invalid byte sequence for encoding "UTF8": 0x00', "invalid byte sequence for "
                                                                 'encoding "UTF8"'),
    ("P0001", "refused: secret\nCONTEXT:  PL/pgSQL function refuse() line 1 at RAISE\n",
     "raised by a database function or trigger (its text is not shown)"),
    ("40001", "could not serialize access due to concurrent update\n",
     "could not serialize access due to concurrent update"),
])
def test_redacted_message_keeps_what_failed_and_drops_the_row(sqlstate, message, kept):
    assert redacted_message(sqlstate, message) == kept
