"""The stats rollup: per-bucket aggregates of the figures `/resolution-stats` shows
(bot.domain.rollup), which buckets are rolled, and the tickets whose figures changed.

- `stats_rollup`: one row per (bucket, figure family, key) with the family's counts
  and float sums (which column means what: `bot.domain.stats_facts.FAMILIES`). Buckets
  are UTC days (86400 s), hours (3600 s) and, for the success trend only, minutes.
- `stats_rollup_days`: one row per UTC day the job rolled, and up to when
  (`rolled_until`: the day's end once whole, else the last whole hour rolled).
- `stats_dirty`: appended by database triggers (migration 0018r) in the same
  transaction as every write that can move a figure (an action, a resolution, a
  person's resolution, a ticket's team): the ticket and the written row's time. The
  hours those touch are computed live until the job rolls them again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# Enough value columns for the widest family.
COUNT_COLUMNS = 9
_Id = BigInteger().with_variant(Integer(), "sqlite")


class StatsRollup(Base):
    __tablename__ = "stats_rollup"

    # The granularity first: a window reads a range of days, or of hours, not both.
    bucket_seconds: Mapped[int] = mapped_column(primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    family: Mapped[str] = mapped_column(String(20), primary_key=True)
    key_a: Mapped[str] = mapped_column(String(100), primary_key=True)
    key_b: Mapped[str] = mapped_column(String(100), primary_key=True)
    key_c: Mapped[str] = mapped_column(String(20), primary_key=True)
    n0: Mapped[int] = mapped_column(BigInteger, default=0)
    n1: Mapped[int] = mapped_column(BigInteger, default=0)
    n2: Mapped[int] = mapped_column(BigInteger, default=0)
    n3: Mapped[int] = mapped_column(BigInteger, default=0)
    n4: Mapped[int] = mapped_column(BigInteger, default=0)
    n5: Mapped[int] = mapped_column(BigInteger, default=0)
    n6: Mapped[int] = mapped_column(BigInteger, default=0)
    n7: Mapped[int] = mapped_column(BigInteger, default=0)
    n8: Mapped[int] = mapped_column(BigInteger, default=0)
    x0: Mapped[float] = mapped_column(Float, default=0.0)


class StatsRollupDay(Base):
    __tablename__ = "stats_rollup_days"

    day: Mapped[datetime] = mapped_column(primary_key=True)
    rolled_until: Mapped[datetime] = mapped_column()
    rolled_at: Mapped[datetime] = mapped_column()
    # Whether the day has minute rows (kept for the trend's recent days only).
    minutes: Mapped[bool] = mapped_column()


class StatsDirty(Base):
    __tablename__ = "stats_dirty"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column()
    at: Mapped[datetime | None] = mapped_column()
