"""The SLA stats rollup (bot.domain.sla_rollup): per UTC day of `ticket_sla.started_at`,
the figures `/resolution-stats` shows in its SLA table, and which days are rolled.

- `sla_rollup`: per (kind, day, team, priority, bin). Kind 1: the day's own figures;
  kind 2: the sum of the kind-1 rows of every rolled day before `day` (a running total,
  so any run of whole days is two reads). Bin -1 holds the counts (n0 tickets, n1..n4
  response met/breached, resolution met/breached); the other bins count stopped clocks
  per histogram bin of their seconds (n0), response and resolution apart
  (bot.domain.sla_rollup.RESOLUTION_BINS).
- `sla_rollup_days`: one row per UTC day the job rolled (its kind-1 rows and the running
  total after it are stored).
- `sla_dirty`: appended by triggers (migration 0019q) in the same transaction as every
  write to `ticket_sla` that can move a figure: the row's start time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

_Id = BigInteger().with_variant(Integer(), "sqlite")


class SlaRollup(Base):
    __tablename__ = "sla_rollup"

    kind: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    priority: Mapped[str] = mapped_column(String(10), primary_key=True)
    bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    n0: Mapped[int] = mapped_column(Integer, default=0)
    n1: Mapped[int] = mapped_column(Integer, default=0)
    n2: Mapped[int] = mapped_column(Integer, default=0)
    n3: Mapped[int] = mapped_column(Integer, default=0)
    n4: Mapped[int] = mapped_column(Integer, default=0)


class SlaRollupDay(Base):
    __tablename__ = "sla_rollup_days"

    day: Mapped[datetime] = mapped_column(primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column()


class SlaDirty(Base):
    __tablename__ = "sla_dirty"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime | None] = mapped_column()
