"""What the HTTP benchmarks send: signed Slack requests in a fixed, repeatable mix.

- `seed_resolved_tickets()`: auto-resolved tickets of the requester, written as the
  end-to-end tests write them (`tests.support.harness.resolved_ticket`), each with its
  resolution message posted to the fake Slack, for the clicks to answer.
- `Mix`: `/ticket` commands, the requester's Yes and star clicks, and a stranger's
  clicks, spread evenly, signed later by the load generator exactly as Slack signs
  (`bot.sandbox.signing`).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bot.sandbox import signing
from tests.support.harness import CHANNEL, REQUESTER, STRANGER, TEAM_ID, resolved_ticket

ISSUES = (
    "My VPN keeps disconnecting when I work from home",
    "I forgot my password and I am locked out",
    "The office wifi drops every few minutes",
    "The printer on floor 3 says paper jam but there is none",
    "Outlook will not sync my mailbox",
    "I need access to the design software",
    "My laptop is very slow since the update",
    "The MFA app does not send me a code",
    "The shared drive says access denied",
    "My monitor does not wake up on the dock",
)


def seed_resolved_tickets(database_url: str, slack, count: int) -> list[tuple[int, str]]:
    """`count` auto-resolved tickets of REQUESTER, each with its resolution message
    posted to the fake Slack.

    Args:
        database_url: the server's database.
        slack: the fake Slack (anything with `base_url` and `token`).
        count: how many.

    Returns:
        (ticket_id, message ts) of each.
    """
    from slack_sdk import WebClient
    from sqlalchemy import select

    from bot import views
    from models import ActionHistory, Ticket, make_engine, make_session_factory

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    client = WebClient(token=slack.token, base_url=slack.base_url, timeout=10)
    seeded = []
    try:
        ids = [resolved_ticket(sessions) for _ in range(count)]
        with sessions() as session:
            for ticket_id in ids:
                ticket = session.get_one(Ticket, ticket_id)
                action = session.scalars(select(ActionHistory)
                                         .where(ActionHistory.ticket_id == ticket_id)).one()
                text, blocks = views.resolution_message(ticket, action, ticket_text=ticket.description)
                ts = client.chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)["ts"]
                ticket.slack_message_ts = ts
                seeded.append((ticket_id, ts))
            session.commit()
    finally:
        engine.dispose()
    return seeded


@dataclass(frozen=True)
class Request:
    """One request's body, before signing; `kind` is "click", "stranger" or "ticket"."""

    kind: str
    body: bytes
    content_type: str = signing.FORM_CONTENT_TYPE
    # A click that changes the answer: the ts of the message it redraws (else "").
    redraw_ts: str = ""
    # The requester's click: its ticket (0 for anything else), see `Mix.give_back`.
    ticket_id: int = 0


class Mix:
    """Signed Slack requests in a fixed, repeatable mix.

    Args:
        tickets: (ticket_id, message ts) of resolved tickets the clicks answer.
        ticket_share: the share of `/ticket` commands; the rest are clicks.
        stranger_share: the share of clicks made by someone who is not the requester.
        visits: the requester's clicks so far per ticket, shared by the mixes sent to one
            server (so each star click still changes the answer it finds stored).
    """

    def __init__(self, tickets: Sequence[tuple[int, str]], *, ticket_share: float = 0.5,
                 stranger_share: float = 0.2, visits: dict[int, int] | None = None) -> None:
        from bot.views import ActionId, feedback_value, rating_action_id

        self._tickets = list(tickets)
        self._ticket_share = ticket_share
        self._stranger_share = stranger_share
        self._n = itertools.count()
        self._clicks = itertools.count()
        self._visits: dict[int, int] = {} if visits is None else visits
        self._yes, self._value, self._rating = ActionId.FEEDBACK_YES.value, feedback_value, rating_action_id
        self._lock = threading.Lock()

    def _every(self, share: float, n: int) -> bool:
        # Spread evenly: request n is of this kind when floor((n+1)*share) > floor(n*share).
        return int((n + 1) * share) > int(n * share)

    def next(self) -> Request:
        """The next request of the mix (thread-safe)."""
        with self._lock:
            n = next(self._n)
            if self._every(self._ticket_share, n):
                return self._command(n)
            c = next(self._clicks)
            ticket_id, ts = self._tickets[c % len(self._tickets)]
            if self._every(self._stranger_share, c):
                return self._click("stranger", self._yes, self._value(ticket_id), STRANGER, ts)
            visit = self._visits[ticket_id] = self._visits.get(ticket_id, -1) + 1
            if visit % 3 == 0:
                # Only the first Yes changes the answer (the seeded ones are unanswered).
                return self._click("click", self._yes, self._value(ticket_id), REQUESTER, ts,
                                   redraws=visit == 0, ticket_id=ticket_id)
            score = visit % 5 + 1  # a different score than last time: the answer changes
            return self._click("click", self._rating(score), self._value(ticket_id, score=score),
                               REQUESTER, ts, redraws=True, ticket_id=ticket_id)

    def take(self, count: int) -> list[Request]:
        """The next `count` requests."""
        return [self.next() for _ in range(count)]

    def give_back(self, unsent: Sequence[Request]) -> None:
        """Forget the requester's clicks taken but never sent (a closed loop takes more
        than it sends), so the next click on each ticket still changes its answer."""
        with self._lock:
            for request in unsent:
                if request.ticket_id:
                    self._visits[request.ticket_id] -= 1

    def _click(self, kind: str, action_id: str, value: str, user: str, ts: str, *,
               redraws: bool = False, ticket_id: int = 0) -> Request:
        payload = signing.block_actions_payload(
            action_id, value, user_id=user, channel_id=CHANNEL, team_id=TEAM_ID, message_ts=ts,
            trigger_id=f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:20]}",
        )
        return Request(kind, signing.block_actions_body(payload).encode(), redraw_ts=ts if redraws else "",
                       ticket_id=ticket_id)

    def _command(self, n: int) -> Request:
        body = signing.slash_command_body(
            "/ticket", f"{ISSUES[n % len(ISSUES)]} (#{n})", user_id=REQUESTER, channel_id=CHANNEL,
            team_id=TEAM_ID, trigger_id=f"trig-{uuid.uuid4().hex}",
        )
        return Request("ticket", body.encode())
