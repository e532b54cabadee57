"""The part of a ticket an action changes, as JSON, and putting it back.

`before_state` and `after_state` in action_history are these snapshots; rollback
compares the ticket's current snapshot with `after_state` and restores `before_state`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models import Ticket, as_utc

# Everything an action may change. A rollback restores exactly these.
SNAPSHOT_FIELDS = (
    "status",
    "assigned_team",
    "awaiting_response_from",
    "escalated_at",
    "escalation_priority",
    "resolved_at",
    "assigned_to",
)
# Snapshots written before people could take tickets (migration 0010) have no
# `assigned_to`; nobody had a ticket then, so a missing one reads as None.
_ADDED_LATER = {"assigned_to": None}
REQUIRED_FIELDS = tuple(name for name in SNAPSHOT_FIELDS if name not in _ADDED_LATER)
_DATETIME_FIELDS = frozenset({"escalated_at", "resolved_at"})


def snapshot(ticket: Ticket) -> dict[str, Any]:
    """The ticket's state as a JSON-safe dict (datetimes as ISO 8601 UTC)."""
    state: dict[str, Any] = {}
    for name in SNAPSHOT_FIELDS:
        value = getattr(ticket, name)
        if isinstance(value, datetime):
            value = as_utc(value).isoformat()
        elif isinstance(value, str):
            # Plain strings only: a status just set is a TicketStatus member, and the
            # snapshot (and any message quoting it) must hold the stored value.
            value = str(value)
        state[name] = value
    return state


def is_complete(state: Any) -> bool:
    """Whether a stored snapshot holds every field a rollback needs."""
    return isinstance(state, dict) and all(name in state for name in REQUIRED_FIELDS)


def restore(ticket: Ticket, state: dict[str, Any]) -> None:
    """Put the snapshot back on the ticket.

    Raises:
        ValueError: if the snapshot lacks a field (a corrupt history row).
    """
    missing = [name for name in REQUIRED_FIELDS if name not in state]
    if missing:
        raise ValueError(f"snapshot lacks {', '.join(missing)}")
    for name in SNAPSHOT_FIELDS:
        value = state.get(name, _ADDED_LATER.get(name))
        if name in _DATETIME_FIELDS and value is not None:
            value = datetime.fromisoformat(value)
        setattr(ticket, name, value)


def differences(current: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields where `current` differs from `expected`, as {field: (expected, current)}."""
    return {
        name: (expected.get(name), current.get(name))
        for name in SNAPSHOT_FIELDS
        if current.get(name) != expected.get(name)
    }
