"""The one clock every time-dependent rule reads, so tests can move time.

(Normalising a stored timestamp to UTC is `models.as_utc`, beside the column type.)
"""

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)
