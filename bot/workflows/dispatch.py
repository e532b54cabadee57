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

New tickets and re-decisions call the same thing: `decision_slot(runtime)` where the
acknowledgement must say whether the bot starts now, `dispatch_decision(runtime,
ticket_id)` elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from slack_sdk import WebClient

from bot.delivery.background import Background, Slot
from bot.workflows import announce
from bot.workflows.runtime import Runtime

log = logging.getLogger(__name__)


class Place(Protocol):
    """Room for one decision, taken before an acknowledgement and used after it."""

    def dispatch(self, ticket_id: int) -> None:
        """Hand the ticket's decision off (once)."""


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

    def dispatch(self, ticket_id: int) -> None:
        self._slot.submit(announce.decide_and_announce, self._runtime, self._client, ticket_id)


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


def dispatch_decision(runtime: Runtime, ticket_id: int) -> bool:
    """Hand a stored ticket's decision off now (a new ticket or a re-decision), after
    the transaction that stored it has committed.

    Args:
        runtime: this process's runtime (its `decisions` say where).
        ticket_id: the ticket.

    Returns:
        False when there was no room (the sweep decides on a `new` ticket later).
    """
    with decision_slot(runtime) as place:
        if place is None:
            log.warning("no room to decide on ticket %s now; the sweep will", ticket_id)
            return False
        place.dispatch(ticket_id)
        return True
