"""Done when: a :ticket: reaction opens one ticket however many react; the requester
withdraws a ticket from App Home. Over signed HTTP to the real `resolvemeq serve`
(gunicorn, several request threads), real PostgreSQL and Redis, the fake Slack."""

from __future__ import annotations

import threading

from sqlalchemy import select

from bot.domain import audit
from bot.views import ActionId, ticket_value
from models import AuditEvent, Ticket, TicketSource, TicketStatus
from tests.support.harness import CHANNEL, shown, wait_until

AUTHOR = "UAUTHOR"
PRINTER = "The printer on floor 3 says paper jam but there is no paper stuck"


def _tickets(sessions):
    with sessions() as session:
        return session.scalars(select(Ticket).order_by(Ticket.ticket_id)).all()


def test_many_people_reacting_at_once_open_one_ticket_answered_in_the_thread(e2e, slack, e2e_sessions):
    ts = slack.post_as_person(CHANNEL, AUTHOR, PRINTER)
    reactors = [f"UREACT{i}" for i in range(8)]
    barrier, answers = threading.Barrier(len(reactors)), []

    def react(user):
        barrier.wait(timeout=10)
        answers.append(e2e.event({"type": "reaction_added", "user": user, "reaction": "ticket",
                                  "item_user": AUTHOR,
                                  "item": {"type": "message", "channel": CHANNEL, "ts": ts},
                                  "event_ts": "1764400100.000100"}).status_code)

    threads = [threading.Thread(target=react, args=(user,)) for user in reactors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == [200] * len(reactors)
    [ticket] = _tickets(e2e_sessions)
    assert (ticket.user_id, ticket.description, ticket.source) == (AUTHOR, PRINTER, TicketSource.REACTION)
    # The notice and the answer, both in the message's thread; everyone else was told.
    thread = wait_until(lambda: (t := [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == ts])
                        and len(t) >= 2 and t, what="the notice and the answer")
    assert sum("I've opened ticket" in m["text"] for m in thread) == 1
    assert f"#{ticket.ticket_id}" in shown(thread[-1])
    told = wait_until(lambda: len(t := [e for e in slack.ephemerals(CHANNEL) if "already" in e["text"]])
                      == len(reactors) - 1 and t, what="the others told")
    assert len({e["user"] for e in told}) == len(reactors) - 1
    with e2e_sessions() as session:
        assert len(session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == audit.TICKET_FROM_MESSAGE)).all()) == 1


def test_the_requester_withdraws_a_ticket_from_app_home(e2e, slack, e2e_sessions):
    assert e2e.command("/ticket", "I need access to the finance shared drive").status_code == 200
    ticket = wait_until(lambda: (t := _tickets(e2e_sessions)) and t[0].status != TicketStatus.NEW and t[0],
                        what="the decision")
    e2e.event({"type": "app_home_opened", "user": ticket.user_id, "channel": "D0HOME", "tab": "home",
               "event_ts": "1764400100.000200"})
    wait_until(lambda: f"#{ticket.ticket_id}" in shown(slack.home_view(ticket.user_id) or {}),
               what="the ticket in App Home")

    assert e2e.home_click(ActionId.MY_WITHDRAW, ticket_value(ticket.ticket_id),
                          user=ticket.user_id).status_code == 200

    wait_until(lambda: "You have no open tickets" in shown(slack.home_view(ticket.user_id) or {}),
               what="the Home drawn again")
    [closed] = _tickets(e2e_sessions)
    assert closed.status == TicketStatus.CLOSED
    with e2e_sessions() as session:
        [event] = session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == audit.TICKET_WITHDRAWN)).all()
        assert event.actor_id == ticket.user_id
