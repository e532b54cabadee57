"""The decision's three steps in one test session.

The app runs claim, decide and act in three transactions (bot.workflows.decision); a
test whose session is rolled back at teardown runs the same steps in that session.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.core import clock
from bot.domain import processing
from bot.domain.processing import Outcome


def decide_in(session: Session, ticket_id: int, *, agent, budget, settings) -> Outcome:
    """Claim, decide and act on `ticket_id` in `session` (flushed, not committed)."""
    claim = processing.claim_ticket(session, ticket_id, now=clock.now(), ttl=settings.claim_ttl)
    if claim is None:
        return processing.unclaimed(session, ticket_id)
    calls = processing.CallLog()
    decision = processing.decide(claim, agent=agent, budget=budget, settings=settings, calls=calls)
    return processing.act(session, claim, decision, calls=calls, settings=settings, now=clock.now())
