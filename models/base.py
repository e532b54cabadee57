"""Declarative base: one MetaData with a naming convention, UTC timestamps, JSON, and
CHECK constraints drawn from the enums that name a column's values."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import overload

from sqlalchemy import JSON, CheckConstraint, DateTime, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Every index and constraint gets a predictable name, so migrations can drop them
# on any backend and compliance queries can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """`value` as tz-aware UTC; a naive value is taken to be UTC already.

    Every timestamp we store is UTC, and SQLite keeps no zone, so a naive value read
    back (or built by a test) means UTC, never local time.

    Args:
        value: a datetime, naive or aware, or None.

    Returns:
        The same instant in UTC, or None for None.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def known_values(column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    """A CHECK constraint that `column` holds one of `values` (named `<column>_known`).

    The enum is kept in the constraint's `info`, so tests can prove the database
    refuses what the enum does not name, for every such constraint.

    Args:
        column: the column's name.
        values: the StrEnum whose values are the allowed ones.

    Returns:
        The constraint, for a model's `__table_args__`.
    """
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_known",
                           info={"column": column, "enum": values})


class UTCDateTime(TypeDecorator):
    """A timestamp that is tz-aware UTC going in and coming out, on every backend.

    SQLite keeps no zone; without this a value written as UTC reads back naive and
    comparisons with the clock fail.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must be tz-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict: JSONType,
        list: JSONType,
    }
