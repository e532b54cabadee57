"""The one clock every time-dependent rule reads, so tests can move time."""

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Normalise a timestamp read back from the database to tz-aware UTC.

    SQLite keeps no zone, so a value written as UTC comes back naive.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
