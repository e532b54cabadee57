"""The outcome of a bot action counted the slow way, for tests that check the SQL:
every row loaded and classified in Python (README, *What the figures mean*)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from models import ActionHistory, ActionType, PersonResolution, TicketResolution


def outcome_in_python(session) -> Callable[[ActionHistory], str]:
    """A function giving an action's outcome from the rows stored now:
    rolled_back, confirmed, reopened or unanswered."""
    resolutions = {r.ticket_id: r for r in session.scalars(select(TicketResolution))}
    people = session.scalars(select(PersonResolution)).all()
    rolled_back = {a.id for a in session.scalars(select(ActionHistory)) if a.rolled_back}

    def said_no(r):
        return r.resolution_confirmed is False or (r.reopened and r.resolution_confirmed is None)

    def outcome(a):
        if a.rolled_back:
            return "rolled_back"
        routing = a.action_type != ActionType.AUTO_RESOLVE
        r = resolutions.get(a.ticket_id)
        if r is not None and not (r.action_id == a.id or (routing and r.created_at >= a.executed_at)):
            r = None
        if r is not None and r.action_id in rolled_back:
            r = None
        mine = [p for p in people if routing and p.ticket_id == a.ticket_id
                and p.created_at >= a.executed_at]
        if (r and r.resolution_confirmed is True) or any(p.resolution_confirmed for p in mine):
            return "confirmed"
        if (r and said_no(r)) or any(said_no(p) for p in mine):
            return "reopened"
        return "unanswered"

    return outcome
