"""What can go wrong in a way a person should be told about.

Each error carries the sentence the person sees. The Slack layer maps these to
messages; anything else is unexpected and gets an error id.

`keep_writes` marks denials whose audit row must survive: the transaction owner
commits what was flushed before the error (only the audit event) and re-raises.
"""

from __future__ import annotations

from datetime import datetime


class ResolveMeQError(Exception):
    """Base of the errors a person is told about."""

    keep_writes = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ResolveMeQError):
    """The request itself is malformed (empty text, bad id, rating out of range)."""


class NotFound(ResolveMeQError):
    """The ticket, action or resolution does not exist."""


class Ambiguous(ResolveMeQError):
    """A short id prefix matches more than one action."""

    def __init__(self, message: str, matches: list[str]) -> None:
        super().__init__(message)
        self.matches = matches


class NotAuthorized(ResolveMeQError):
    """The person may not do this; the denial is audited."""

    keep_writes = True


class NotRequester(NotAuthorized):
    """Only the person the ticket is for may answer its feedback."""


class TicketWithdrawn(ResolveMeQError):
    """The requester withdrew the ticket: an answer on it changes nothing. Audited."""

    keep_writes = True


class AlreadyRolledBack(ResolveMeQError):
    """The action was rolled back before."""


class RollbackNotPossible(ResolveMeQError):
    """The action cannot be undone (e.g. it is itself a rollback)."""


class RollbackConflict(ResolveMeQError):
    """The ticket changed since the action; restoring would overwrite someone's work."""

    def __init__(self, message: str, differences: dict[str, tuple[object, object]]) -> None:
        super().__init__(message)
        self.differences = differences


class AlreadyRequested(ResolveMeQError):
    """A rollback of this action is already waiting for approval (two-person mode)."""


class RequestClosed(ResolveMeQError):
    """The rollback request was approved, rejected or has expired: nothing to decide."""


class Throttled(ResolveMeQError):
    """Too many attempts; `retry_at` says when the next one is allowed. Audited."""

    keep_writes = True

    def __init__(self, message: str, retry_at: datetime | None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class TooManyTickets(ResolveMeQError):
    """The person has opened TICKET_RATE_LIMIT tickets already; nothing was stored.
    `retry_at` says when they may open another. Not audited: nothing is kept."""

    def __init__(self, message: str, retry_at: datetime | None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class LimiterUnavailable(ResolveMeQError):
    """The rate-limit store cannot be reached; we fail closed."""


class Busy(ResolveMeQError):
    """Too much work is waiting already; nothing was started. Try again shortly."""

    def __init__(self, message: str = "I'm busy right now, please try again in a minute.") -> None:
        super().__init__(message)
