"""Tickets from a message (one per message, however many react) and the requester's own
changes from App Home (add detail, withdraw): who may, what is stored and audited."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.core.errors import InvalidInput, NotAuthorized
from bot.domain import audit, conversation, message_tickets, requester
from bot.domain.message_tickets import Message
from models import AuditEvent, MessageKind, Ticket, TicketSource, TicketStatus, transaction
from tests.support.factories import make_ticket

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
AUTHOR, REACTOR, OTHER = "UAUTHOR", "UREACTOR", "UOTHER"
MESSAGE = Message(channel_id="CGENERAL", ts="1764400000.000100", author_id=AUTHOR,
                  text="The printer on floor 3 is jammed again")


def _events(session, event_type):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)))


def test_a_message_opens_a_ticket_for_its_author_answered_in_its_thread(session):
    result = message_tickets.open_from_message(session, MESSAGE, reporter_id=REACTOR,
                                               source=TicketSource.REACTION, team_id="T1", now=NOW)
    ticket = result.ticket
    assert result.created
    assert (ticket.user_id, ticket.description, ticket.status) == (AUTHOR, MESSAGE.text, TicketStatus.NEW)
    assert (ticket.slack_channel_id, ticket.slack_thread_ts) == ("CGENERAL", MESSAGE.ts)
    assert (ticket.origin_channel_id, ticket.origin_message_ts) == ("CGENERAL", MESSAGE.ts)
    [event] = _events(session, audit.TICKET_FROM_MESSAGE)
    assert (event.actor_id, event.ticket_id, event.detail["via"]) == (REACTOR, ticket.ticket_id, "reaction")


def test_a_reply_in_a_thread_is_answered_in_that_thread(session):
    reply = Message(channel_id="CGENERAL", ts="1764400005.000200", author_id=AUTHOR,
                    text="still broken", thread_ts="1764400000.000100")
    ticket = message_tickets.open_from_message(session, reply, reporter_id=AUTHOR,
                                               source=TicketSource.SHORTCUT).ticket
    assert ticket.slack_thread_ts == "1764400000.000100"
    assert ticket.origin_message_ts == "1764400005.000200"


def test_a_second_reaction_or_the_shortcut_finds_the_same_ticket(session):
    first = message_tickets.open_from_message(session, MESSAGE, reporter_id=REACTOR,
                                              source=TicketSource.REACTION)
    again = message_tickets.open_from_message(session, MESSAGE, reporter_id=OTHER,
                                              source=TicketSource.SHORTCUT)
    assert not again.created and again.ticket.ticket_id == first.ticket.ticket_id
    assert len(list(session.scalars(select(Ticket)))) == 1
    assert len(_events(session, audit.TICKET_FROM_MESSAGE)) == 1


@pytest.mark.parametrize("message, said", [
    (Message(channel_id="C1", ts="1.1", author_id=None, text="x"), message_tickets.NOT_A_PERSON),
    (Message(channel_id="C1", ts="1.1", author_id="UBOT", text="deploy done", from_bot=True),
     message_tickets.NOT_A_PERSON),
    (Message(channel_id="C1", ts="1.1", author_id=AUTHOR, text="  "), message_tickets.NO_TEXT),
    (Message(channel_id="C1", ts="not-a-ts", author_id=AUTHOR, text="x"), "do not recognise"),
])
def test_what_cannot_become_a_ticket_is_refused(session, message, said):
    with pytest.raises(InvalidInput, match=said):
        message_tickets.open_from_message(session, message, reporter_id=REACTOR,
                                          source=TicketSource.REACTION)


def test_concurrent_reactions_open_one_ticket(racing_factory):
    barrier, results, errors = threading.Barrier(6), [], []

    def react(who: str) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction(racing_factory) as s:
                got = message_tickets.open_from_message(s, MESSAGE, reporter_id=who,
                                                        source=TicketSource.REACTION)
                results.append((got.ticket.ticket_id, got.created))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=react, args=(f"UREACT{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # SQLite serialises writers: a loser may time out on the lock, never make a second ticket.
    assert not [e for e in errors if "locked" not in str(e)], errors
    with transaction(racing_factory) as s:
        tickets = list(s.scalars(select(Ticket)))
        assert len(tickets) == 1
        assert len(_events(s, audit.TICKET_FROM_MESSAGE)) == 1
    assert {ticket_id for ticket_id, _ in results} == {tickets[0].ticket_id}
    assert sum(created for _, created in results) == 1


def test_home_lists_the_requesters_open_tickets_newest_first(session):
    old = make_ticket(session, user_id=AUTHOR, status=TicketStatus.IN_PROGRESS,
                      created_at=datetime(2026, 11, 1, tzinfo=UTC))
    new = make_ticket(session, user_id=AUTHOR, created_at=datetime(2026, 11, 2, tzinfo=UTC))
    make_ticket(session, user_id=AUTHOR, status=TicketStatus.RESOLVED)
    make_ticket(session, user_id=AUTHOR, status=TicketStatus.CLOSED)
    make_ticket(session, user_id=OTHER)
    mine = requester.open_tickets_of(session, AUTHOR)
    assert [t.ticket_id for t in mine.tickets] == [new.ticket_id, old.ticket_id]
    assert mine.total == 2
    assert requester.open_tickets_of(session, AUTHOR, limit=1).total == 2


def test_detail_joins_the_ticket_and_it_is_decided_again_when_nobody_has_it(session):
    ticket = make_ticket(session, user_id=AUTHOR, status=TicketStatus.AWAITING_USER)
    added = requester.add_detail(session, ticket_id=ticket.ticket_id, user_id=AUTHOR,
                                 text="It says error 0x80070005", now=NOW)
    assert added.redecide
    # One conversation record: the request stays as typed, the detail is a message of
    # its own, waiting for its decision, and the agent reads them together.
    assert ticket.description == "My VPN keeps disconnecting"
    [message] = conversation.replies(session, ticket.ticket_id)
    assert (message.kind, message.author_id, message.text, message.created_at, message.slack_ts) == (
        MessageKind.DETAIL, AUTHOR, "It says error 0x80070005", NOW, None)
    assert conversation.waiting([message]) == (message.id,)
    assert conversation.conversation_text(ticket.description, [message]) == (
        "My VPN keeps disconnecting\n\nIt says error 0x80070005")
    [event] = _events(session, audit.TICKET_DETAIL_ADDED)
    # The audit keeps the size, not the words (retention redacts the ticket's text).
    assert event.detail == {"length": 24, "redecide": True}


def test_detail_on_a_ticket_a_person_has_is_not_decided_again(session):
    ticket = make_ticket(session, user_id=AUTHOR, status=TicketStatus.IN_PROGRESS)
    ticket.assigned_to = "UAGENT"
    added = requester.add_detail(session, ticket_id=ticket.ticket_id, user_id=AUTHOR, text="more")
    assert not added.redecide and ticket.description == "My VPN keeps disconnecting"
    assert [m.text for m in conversation.replies(session, ticket.ticket_id)] == ["more"]


def test_withdraw_closes_the_ticket_and_records_it(session):
    ticket = make_ticket(session, user_id=AUTHOR, status=TicketStatus.ESCALATED, assigned_team="Network")
    ticket.claim_token = "f" * 32
    requester.withdraw(session, ticket_id=ticket.ticket_id, user_id=AUTHOR, now=NOW)
    assert ticket.status == TicketStatus.CLOSED and ticket.claim_token is None
    [event] = _events(session, audit.TICKET_WITHDRAWN)
    assert (event.actor_id, event.detail["previous_status"]) == (AUTHOR, "escalated")
    assert requester.open_tickets_of(session, AUTHOR).total == 0
    with pytest.raises(InvalidInput, match="withdrawn already"):
        requester.withdraw(session, ticket_id=ticket.ticket_id, user_id=AUTHOR)
    with pytest.raises(InvalidInput, match="withdrawn already"):
        requester.add_detail(session, ticket_id=ticket.ticket_id, user_id=AUTHOR, text="more")


def test_only_the_requester_may_change_a_ticket_and_a_try_is_audited(session):
    ticket = make_ticket(session, user_id=AUTHOR)
    with pytest.raises(NotAuthorized, match="Only the person who asked"):
        requester.withdraw(session, ticket_id=ticket.ticket_id, user_id=OTHER)
    with pytest.raises(NotAuthorized):
        requester.add_detail(session, ticket_id=ticket.ticket_id, user_id=OTHER, text="mine now")
    assert ticket.status == TicketStatus.NEW and "mine now" not in ticket.description
    assert [e.actor_id for e in _events(session, audit.TICKET_CHANGE_DENIED)] == [OTHER, OTHER]


def test_a_resolved_ticket_takes_no_detail_and_empty_detail_is_refused(session):
    resolved = make_ticket(session, user_id=AUTHOR, status=TicketStatus.RESOLVED)
    with pytest.raises(InvalidInput, match="resolved already"):
        requester.add_detail(session, ticket_id=resolved.ticket_id, user_id=AUTHOR, text="more")
    ticket = make_ticket(session, user_id=AUTHOR)
    for text in ("", "   \x00 ", "x" * (requester.MAX_DETAIL + 1)):
        with pytest.raises(InvalidInput):
            requester.add_detail(session, ticket_id=ticket.ticket_id, user_id=AUTHOR, text=text)


def test_home_figures_are_counted_again_after_an_invalidation(committing_factory):
    from bot.workflows.home import HomeFigures

    figures = HomeFigures(committing_factory)
    first = figures.get()
    assert figures.get() is first  # within the 30 s
    figures.invalidate()
    assert figures.get() is not first
    with transaction(committing_factory) as s:
        make_ticket(s, user_id=AUTHOR, status=TicketStatus.AWAITING_USER)
    # The viewer's own tickets are never cached.
    assert figures.open_tickets_of(AUTHOR).total == 1
    assert figures.open_tickets_of(AUTHOR).tickets[0].status == TicketStatus.AWAITING_USER
