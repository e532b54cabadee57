"""Where a stored ticket's decision is handed off: the one seam every caller uses.

`serve` stores a ticket and acknowledges; the decision (the agent, the act, the posts
it owes) runs elsewhere:

- on the Celery workers (`DECIDE_ON=workers`, the default with REDIS_URL): a task per
  ticket, published after the ack (`jobs.dispatch.CeleryDecisions`); the serving
  process only stores and acknowledges;
- in the serving process's pool (`DECIDE_ON=serve`, the default without Redis): the
  bounded `Background` executor, as in the embedded default (`InProcessDecisions`).

Either way the decision is idempotent by ticket (`bot.workflows.decision`: claim, then
decide), and a hand-off that never runs (a full pool, a broker that is down, a worker
killed mid-decision) leaves the ticket for the sweep (`bot.domain.sweep`).

New tickets, tickets from a message and re-decisions (after a reply in the thread, or
detail added from App Home) call the same thing, naming which kind of decision it is
(`DecisionKind`): `decision_slot(runtime)` where the acknowledgement must say whether
the bot starts now, `dispatch_decision(runtime, ticket_id, kind)` elsewhere. Wherever it
lands, `run_decision` runs it: each kind claims only what it may decide (a `new` ticket;
one with something its requester added that no decision has read yet), so a task
delivered twice decides once.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from slack_sdk import WebClient

from bot.delivery import outbox
from bot.delivery.background import Background, Slot
from bot.domain.processing import Outcome
from bot.workflows import announce
from bot.workflows.runtime import Runtime

log = logging.getLogger(__name__)


class DecisionKind(enum.StrEnum):
    """Which decision is handed off (the Celery task carries it by value)."""

    # A new ticket (from /ticket, a DM, a mention, a :ticket: reaction or the shortcut).
    NEW = "new"
    # A re-decision after the requester replied in the thread of the bot's question.
    REPLY = "reply"
    # A re-decision after the requester added detail from App Home.
    DETAIL = "detail"


_RUN: dict[DecisionKind, Callable[[Runtime, WebClient, int], Outcome]] = {
    DecisionKind.NEW: announce.decide_and_announce,
    DecisionKind.REPLY: announce.redecide_and_announce,
    DecisionKind.DETAIL: announce.redecide_waiting,
}


def run_decision(runtime: Runtime, client: WebClient, ticket_id: int,
                 kind: DecisionKind = DecisionKind.NEW, owed: Sequence[int] = ()) -> Outcome:
    """Run a handed-off decision where it landed (the serving process's pool, a worker).

    Args:
        runtime: this process's runtime.
        client: the Slack client.
        ticket_id: the ticket.
        kind: which decision.
        owed: outbox rows to send first (a ticket from a message: the word that it is
            open comes before its answer in the thread); rows sent already are skipped.

    Returns:
        The outcome (`already_processed` when there was nothing to decide, or another
        process is deciding).
    """
    if owed:
        outbox.deliver(runtime.sessions, client, list(owed), ttl=runtime.settings.claim_ttl)
    return _RUN[DecisionKind(kind)](runtime, client, ticket_id)


class Place(Protocol):
    """Room for one decision, taken before an acknowledgement and used after it."""

    def dispatch(self, ticket_id: int, kind: DecisionKind = DecisionKind.NEW,
                 owed: Sequence[int] = ()) -> None:
        """Hand the ticket's decision off (once); `owed`: see `run_decision`."""


class Decisions(Protocol):
    """Where this process hands decisions off to."""

    def slot(self) -> AbstractContextManager[Place | None]:
        """Room for one decision, or None when there is none (the sweep decides later)."""
        ...


class InProcessDecisions:
    """Decisions on the serving process's bounded pool (`DECIDE_ON=serve`).

    Args:
        runtime: this process's runtime.
        client: the Slack client the decisions' posts go through.
        background: the decisions' executor (SLACK_BACKGROUND_WORKERS threads).
    """

    def __init__(self, runtime: Runtime, client: WebClient, background: Background) -> None:
        self._runtime, self._client, self._background = runtime, client, background

    @contextmanager
    def slot(self) -> Iterator[Place | None]:
        with self._background.slot() as slot:
            yield None if slot is None else _PoolPlace(slot, self._runtime, self._client)


class _PoolPlace:
    def __init__(self, slot: Slot, runtime: Runtime, client: WebClient) -> None:
        self._slot, self._runtime, self._client = slot, runtime, client

    def dispatch(self, ticket_id: int, kind: DecisionKind = DecisionKind.NEW,
                 owed: Sequence[int] = ()) -> None:
        self._slot.submit(run_decision, self._runtime, self._client, ticket_id, kind, tuple(owed))


def decision_slot(runtime: Runtime) -> AbstractContextManager[Place | None]:
    """Room for one decision in this process's hand-off (see the module docstring).

    Use it as a context manager: `with decision_slot(runtime) as place: ... ack() ...
    place.dispatch(ticket_id)`. None inside the block when there is no room (the pool
    is full, or this process has no hand-off): the ticket waits for the sweep.
    """
    decisions = runtime.decisions
    if decisions is None:
        return _none()
    return decisions.slot()


@contextmanager
def _none() -> Iterator[None]:
    yield None


def dispatch_decision(runtime: Runtime, ticket_id: int, kind: DecisionKind = DecisionKind.NEW,
                      owed: Sequence[int] = ()) -> bool:
    """Hand a stored ticket's decision off now (a new ticket or a re-decision), after
    the transaction that stored it has committed.

    Args:
        runtime: this process's runtime (its `decisions` say where).
        ticket_id: the ticket.
        kind: which decision.
        owed: outbox rows to send before it (see `run_decision`).

    Returns:
        False when there was no room (the sweep decides on a `new` ticket, or a reply
        left waiting, later).
    """
    with decision_slot(runtime) as place:
        if place is None:
            log.warning("no room to decide on ticket %s (%s) now; the sweep will", ticket_id, kind)
            return False
        place.dispatch(ticket_id, kind, owed)
        return True
