"""The one error path, in process: what a person is told when a listener cannot finish,
and what the request's transaction leaves behind.

A refusal is the error's sentence; a database outage says nothing was saved, in the
words of what the person did; anything else is an error id in the log. A slash command
hears it in its ack, a click or an event in an ephemeral message (acked 200).
"""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bot.views import (
    ActionId,
    BlockId,
    feedback_value,
    resolve_modal,
    rollback_value,
    ticket_value,
    why_value,
)
from bot.workflows import announce
from bot.workflows.runtime import Runtime
from handlers.errors import DB_DOWN
from models import AuditEvent, Ticket, TicketResolution
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import ADMIN, CHANNEL, REQUESTER, TEAM_ID, VPN, free_port, shown
from tests.support.tcp_proxy import TcpProxy

DB_DOWN_CLICK = "Sorry, I couldn't save that right now. Please click again in a minute."
DB_DOWN_EVENT = ("Sorry, I can't reach the helpdesk database right now, so nothing was saved. "
                 "Please send that again in a minute.")
DM = {"type": "message", "channel_type": "im", "channel": "D0REQUESTER", "user": REQUESTER,
      "text": VPN, "ts": "1732528000.000200"}


def _count(sessions, model) -> int:
    with sessions() as session:
        return len(session.scalars(select(model)).all())


def _ephemerals_to(slack, user: str) -> list[dict]:
    return [e for e in slack.ephemerals() if e["user"] == user]


# A database that is not there ------------------------------------------------------------

@pytest.fixture()
def no_database(settings, slack, namespace):
    """The app with its database on a closed port: every connection is refused."""
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/resolvemeq"
    runtime = Runtime.from_settings(listener_settings(database_url=url, slack=slack, redis_url=REDIS_URL),
                                    namespace=namespace)
    with in_process(runtime, slack) as app:
        yield app
    slack.reset()


@pytest.mark.parametrize("command, text", [("/ticket", VPN), ("/history", "1"), ("/rollback", "0123abcd"),
                                           ("/resolution-stats", "7")])
def test_an_outage_during_a_command_is_said_in_its_ack(no_database, caplog, command, text):
    with caplog.at_level(logging.ERROR, logger="handlers.errors"):
        said = no_database.command(command, text, user=ADMIN).json()

    assert said["response_type"] == "ephemeral" and said["text"] == DB_DOWN
    assert DB_DOWN in shown({"blocks": said["blocks"]})
    if command != "/resolution-stats":  # counted off the request path, in a job's transaction
        assert f"could not handle '{command}': the database failed" in caplog.text


@pytest.mark.parametrize("action_id, value, told", [
    (ActionId.FEEDBACK_YES, feedback_value(1), DB_DOWN_CLICK),
    (ActionId.ROLLBACK_CONFIRM, rollback_value(uuid.uuid4(), "wrong"),
     "Sorry, I can't reach the helpdesk database right now; nothing was rolled back."),
    (ActionId.WHY, why_value(uuid.uuid4()),
     "Sorry, I can't reach the helpdesk database right now. Please click again in a minute."),
])
def test_an_outage_during_a_click_is_told_to_the_clicker(no_database, slack, action_id, value, told):
    answer = no_database.click(action_id, value, user=ADMIN)

    assert (answer.status_code, answer.text) == (200, "")
    no_database.settled()
    if action_id == ActionId.ROLLBACK_CONFIRM:
        # The confirm step is answered through its response URL, and kept: click again.
        [response] = slack.responses(ADMIN)
        assert (response.args["text"], response.args["replace_original"]) == (told, False)
        assert _ephemerals_to(slack, ADMIN) == []
        return
    [said] = _ephemerals_to(slack, ADMIN)
    assert (said["channel"], said["text"]) == (CHANNEL, told)


def test_an_outage_during_a_take_is_told_to_the_clicker(no_database, slack):
    answer = no_database.click(ActionId.TEAM_TAKE, ticket_value(1), user=ADMIN, channel="CTEAM")

    assert (answer.status_code, answer.text) == (200, "")
    no_database.settled()
    [said] = _ephemerals_to(slack, ADMIN)
    assert (said["channel"], said["text"]) == ("CTEAM", DB_DOWN_CLICK)


def test_an_outage_during_a_modal_submission_is_said_in_the_modal(no_database, slack):
    view = {**resolve_modal(SimpleNamespace(ticket_id=1, user_id=REQUESTER, description=VPN)),
            "id": "VMODAL0001"}

    answer = no_database.submit_view(view, {BlockId.RESOLUTION_NOTE: {ActionId.RESOLUTION_NOTE: "Fixed"}},
                                     user=ADMIN)

    # The modal stays open, with what was typed, and says why: submitting again works.
    assert answer.json() == {"response_action": "errors", "errors": {
        BlockId.RESOLUTION_NOTE: "Sorry, I couldn't save that right now. Please submit again in a minute."}}
    no_database.settled()
    assert _ephemerals_to(slack, ADMIN) == []


def test_an_outage_during_a_dm_is_told_to_the_sender(no_database, slack):
    answer = no_database.event(DM)

    assert (answer.status_code, answer.text) == (200, "")
    no_database.settled()
    [said] = _ephemerals_to(slack, REQUESTER)
    assert (said["channel"], said["text"]) == ("D0REQUESTER", DB_DOWN_EVENT)


# A database lost between the listener's writes and the commit -------------------------------

def test_a_commit_that_fails_at_the_ack_saves_nothing_says_so_and_decides_nothing(
        settings, pg_url, slack, namespace, committing_factory):
    target = make_url(pg_url)
    with TcpProxy(target.host, target.port or 5432) as pg:
        url = target.set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False)
        runtime = Runtime.from_settings(
            listener_settings(database_url=url, slack=slack, redis_url=REDIS_URL), namespace=namespace)
        # The ticket is written and flushed; the database goes away before it is committed.
        event.listen(runtime.sessions, "before_commit", lambda _session: pg.cut(), once=True)
        with in_process(runtime, slack) as app:
            said = app.command("/ticket", VPN).json()
            pg.restore()
            app.settled()
    slack.reset()

    assert said["text"] == DB_DOWN, said
    assert _count(committing_factory, Ticket) == 0
    assert slack.calls("chat.postMessage") == []


# Refusals ----------------------------------------------------------------------------------

def test_a_refusal_is_the_errors_sentence_where_the_person_looks(bolt, slack, committing_factory):
    said = bolt.command("/history", "999", user=ADMIN).json()
    click = bolt.click(ActionId.FEEDBACK_YES, feedback_value(424242))
    dm = bolt.event({**DM, "text": "  "})

    assert said["response_type"] == "ephemeral" and said["text"] == "Ticket #999 does not exist."
    assert (click.status_code, click.text, dm.status_code, dm.text) == (200, "", 200, "")
    bolt.settled()
    [on_click, on_dm] = _ephemerals_to(slack, REQUESTER)
    assert on_click["channel"] == CHANNEL and "has no answer from the bot" in on_click["text"]
    assert on_dm["channel"] == "D0REQUESTER" and "Tell me what is wrong" in on_dm["text"]
    assert _count(committing_factory, Ticket) == 0


# The unexpected ----------------------------------------------------------------------------

def test_an_unexpected_error_is_logged_with_an_id_and_answered_200(bolt, slack, committing_factory, caplog):
    # Slack always sends user_id; a command without one breaks the listener.
    body = urlencode({"command": "/ticket", "text": VPN, "team_id": TEAM_ID, "channel_id": CHANNEL,
                      "trigger_id": "trig-no-user"})
    with caplog.at_level(logging.ERROR, logger="handlers.errors"):
        answer = bolt.post(body)

    assert (answer.status_code, answer.text) == (200, "")
    [record] = [r for r in caplog.records if "unexpected error in a listener" in r.getMessage()]
    assert "error id" in record.getMessage() and record.exc_info[0] is KeyError
    bolt.settled()
    assert _count(committing_factory, Ticket) == 0 and slack.ephemerals() == []


def test_an_unexpected_error_after_a_write_rolls_the_write_back(bolt, slack, committing_factory, monkeypatch,
                                                               caplog):
    bolt.command("/ticket", VPN)
    [post] = slack.wait_for("chat.postMessage")
    bolt.settled()
    with committing_factory() as session:
        ticket_id = session.scalars(select(Ticket.ticket_id)).one()

    def broken(*args, **kwargs):
        raise RuntimeError("the notices could not be written")

    monkeypatch.setattr(announce, "enqueue_reopen_notices", broken)
    with caplog.at_level(logging.ERROR, logger="handlers.errors"):
        answer = bolt.click(ActionId.FEEDBACK_NO, feedback_value(ticket_id), message_ts=post.response["ts"])

    assert (answer.status_code, answer.text) == (200, "")
    assert "unexpected error in a listener" in caplog.text
    with committing_factory() as session:  # the "No" was flushed, then rolled back
        assert session.get(Ticket, ticket_id).status == "resolved"
        resolution = session.scalars(select(TicketResolution)).one()
        assert (resolution.reopened, resolution.response_received_at) == (False, None)
    bolt.settled()
    assert slack.ephemerals() == [] and slack.calls("chat.update") == []


# The request's transaction -------------------------------------------------------------------

def _checkouts(engine, during) -> int:
    taken = []
    listener = lambda *_: taken.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        during()
    finally:
        event.remove(engine, "checkout", listener)
    return len(taken)


def test_a_request_answered_without_the_database_takes_no_connection(bolt, listener_runtime,
                                                                     committing_factory):
    engine = listener_runtime.engine

    assert _checkouts(engine, lambda: bolt.click(ActionId.FEEDBACK_YES, "t=1;s=5")) == 0
    assert _checkouts(engine, lambda: bolt.click(ActionId.ROLLBACK_CANCEL, "x", user=ADMIN)) == 0
    assert _checkouts(engine, lambda: bolt.event({**DM, "channel_type": "channel"})) == 0
    # A click that needs the database does take one: the count is not blind.
    assert _checkouts(engine, lambda: bolt.click(ActionId.FEEDBACK_YES, feedback_value(1))) == 1
    assert _count(committing_factory, AuditEvent) == 0


def test_the_session_is_closed_for_good_once_the_ack_committed_it(bolt, listener_runtime, caplog):
    # A listener that (wrongly) reads after its ack: the session refuses rather than
    # open a transaction nobody would end, and it is a bug (an error id), not an outage:
    # the ack had committed, so "nothing was saved" would not be true.
    def late(ack, session):
        ack(text="done")
        session.scalar(select(1))

    bolt.app.command("/late")(late)
    with caplog.at_level(logging.ERROR, logger="handlers.errors"):
        answer = bolt.command("/late", "")

    assert (answer.status_code, answer.text) == (200, "")
    [record] = [r for r in caplog.records if "unexpected error in a listener" in r.getMessage()]
    assert "permanently closed" in str(record.exc_info[1])
    assert listener_runtime.engine.pool.checkedout() == 0
