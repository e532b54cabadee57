"""The SLA table of `/resolution-stats` from a rollup by UTC day, with the partial days
at both ends (and any day not freshly rolled) counted live.

A ticket's SLA figures are filed under the UTC day of its `ticket_sla.started_at` (the
window is the tickets opened since `since`). Per day and (team, priority) the job keeps
the counts (tickets; response and resolution met and breached) and a histogram of the
stopped clocks' seconds, and a running total of those rows over all rolled days before
each day, so a run of whole days of any length costs two reads (the totals at its two
ends), whatever the window.

The medians come from the histograms: a bin spans a factor of 2^(1/BINS_PER_DOUBLING)
of seconds, and the median is placed inside its bin by rank (linear interpolation), so
it is within 4.4% of the exact median (`percentile_cont(0.5)`): a median of 3h 20m reads
between 3h 11m and 3h 29m; up to 25 s every bin holds one whole second, so a median of
seconds is exact. The counts are exact. Live counting uses the same bins in the same
SQL, so the figures do not depend on whether the job ran.

How the rollup stays right when a ticket's clock changes after its day was rolled (a
late response or resolution, a breach flagged, a reopen, a team change): triggers on
`ticket_sla` (migration 0019q) append the row's start time to `sla_dirty` in the same
transaction; those days are counted live until the job rolls them again. The job
(`roll_up`) takes the marks (deleting them in the statement that reads them, so a mark
committed meanwhile stays for the next pass), rolls those days again from the data as
it is then, rolls the whole days not rolled yet, and recomputes the running totals
from the earliest day it rolled. Everything here only flushes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    SmallInteger,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from bot.domain import stats_facts
from bot.domain.rollup import DAY, KEEP_DAYS, floor_day
from bot.domain.stats_facts import Range, within
from models import SlaDirty, SlaRollup, SlaRollupDay, TicketSla, as_utc

BINS_PER_DOUBLING = 16
# How far a median may be from the exact one, relatively (a bin's width).
PRECISION = 2 ** (1 / BINS_PER_DOUBLING) - 1
# Bins of the resolution clock start here (the response clock's from 0): 2^(5000/16)
# seconds is far past any clock.
RESOLUTION_BINS = 5000
COUNTS = -1
DAY_ROWS, TOTALS = 1, 2
# Runs of whole days up to this long are read from their days' rows, not the totals.
SHORT_RUN_DAYS = 3
# New days rolled per call, so one transaction stays short; the next call goes on.
DAYS_PER_CALL = 30
# Marks taken per call; a reader past READ_MARKS counts everything live.
MARKS_PER_CALL = 100_000
READ_MARKS = 5_000
LOCK_KEY = 0x5EA7_0019
_VALUES = ("n0", "n1", "n2", "n3", "n4")

# (team, priority, bin) -> n0..n4
Facts = dict[tuple[str, str, int], list[int]]


# ----- bins ----------------------------------------------------------------------------------


def _bin_sql(column) -> ColumnElement[int]:
    """floor(BINS_PER_DOUBLING * log2(seconds + 1)), in SQL (PostgreSQL and SQLite alike);
    the small nudge keeps a power of two in its own bin whatever the rounding."""
    seconds = case((column > 0, column), else_=literal(0))
    scaled = func.ln(cast(seconds + 1, Float)) * (BINS_PER_DOUBLING / math.log(2)) + 1e-9
    return cast(func.floor(scaled), Integer)


def bin_of(seconds: int) -> int:
    """The bin of a number of seconds, as `_bin_sql` computes it."""
    return math.floor(math.log(max(seconds, 0) + 1.0) * (BINS_PER_DOUBLING / math.log(2)) + 1e-9)


@functools.lru_cache(maxsize=4096)
def _bounds(index: int) -> tuple[int, int]:
    """The whole seconds a bin holds: [low, high]."""
    return _lowest(index), _lowest(index + 1) - 1


def _lowest(index: int) -> int:
    """The fewest seconds in bin `index` or above (near 2^(index/BINS) - 1; the float
    rounding settled by `bin_of` itself)."""
    low = max(0, math.ceil(2 ** (index / BINS_PER_DOUBLING) - 1) - 1)
    while bin_of(low) < index:
        low += 1
    while low > 0 and bin_of(low - 1) >= index:
        low -= 1
    return low


def median(histogram: dict[int, int]) -> float | None:
    """The median of the seconds a histogram counts (bin -> count), placed inside its
    bin by rank; as percentile_cont(0.5), the mean of the two middle ones for an even count."""
    size = sum(histogram.values())
    if not size:
        return None
    ranks = [(size - 1) // 2, size // 2]
    found: list[float] = []
    below = 0
    for index in sorted(histogram):
        count = histogram[index]
        while ranks and ranks[0] < below + count:
            found.append(place(index, ranks.pop(0), below, count))
        below += count
    return sum(found) / len(found)


def place(index: int, rank: int, below: int, count: int) -> float:
    """Where the value of `rank` (0-based) lies in bin `index`, which holds `count`
    values above `below` smaller ones: spread evenly over the bin's whole seconds."""
    low, high = _bounds(index)
    return low + (high - low) * (rank - below + 0.5) / count


# ----- counting live -------------------------------------------------------------------------


def _breached(at, seconds, target) -> ColumnElement[bool]:
    # Stopped past its target, or still running past it (the job flagged the breach).
    return or_(at.is_not(None), seconds > target)


def _live_parts(ranges: Sequence[Range], *, sign: int = 1, name: str = "live") -> list:
    """The SELECTs that count the tickets started in `ranges` from `ticket_sla` (read
    once): the counts (bin COUNTS), and the stopped clocks per bin; (team, priority,
    bin, n0..n4), int4 like the rollup's columns (a sum of int8 is NUMERIC, slower),
    times `sign` (-1: to take away from a rolled day)."""
    t = TicketSla
    rows = (select(t.team, t.priority, t.response_s, t.resolution_s,
                   _int(t.response_s <= t.response_target_s).label("response_met"),
                   _int(_breached(t.response_breached_at, t.response_s, t.response_target_s))
                   .label("response_breached"),
                   _int(t.resolution_s <= t.resolution_target_s).label("resolution_met"),
                   _int(_breached(t.resolution_breached_at, t.resolution_s, t.resolution_target_s))
                   .label("resolution_breached"))
            .where(within(t.started_at, ranges)).cte(name))
    count = cast(func.count(), Integer) * sign
    counts = (select(rows.c.team, rows.c.priority, literal(COUNTS).label("bin"), count,
                     *[cast(func.sum(rows.c[column]), Integer) * sign for column in (
                         "response_met", "response_breached", "resolution_met", "resolution_breached")])
              .group_by(rows.c.team, rows.c.priority))
    parts = [counts]
    for column, offset in ((rows.c.response_s, 0), (rows.c.resolution_s, RESOLUTION_BINS)):
        index = (_bin_sql(column) + offset).label("bin")
        zero = literal(0, Integer)
        parts.append(select(rows.c.team, rows.c.priority, index, count, zero, zero, zero, zero)
                     .where(column.is_not(None)).group_by(rows.c.team, rows.c.priority, index))
    return parts


def _int(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def live(session: Session, ranges: Sequence[Range]) -> Facts:
    """The counts and histograms of the tickets started in `ranges`, from `ticket_sla`."""
    if not ranges:
        return {}
    parts = _live_parts(ranges)
    facts: Facts = {}
    for row in session.execute(parts[0].union_all(*parts[1:])):
        _add(facts, (row[0], row[1], int(row[2])), row[3:])
    return facts


def _add(facts: Facts, key: tuple[str, str, int], values: Sequence, sign: int = 1) -> None:
    row = facts.setdefault(key, [0] * len(_VALUES))
    for i, value in enumerate(values):
        row[i] += sign * int(value or 0)


# ----- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """The rolled days, and the days changed since they were rolled."""

    rolled: frozenset[datetime]
    first: datetime | None
    stale: frozenset[datetime]
    none_fresh: bool = False

    def fresh(self, day: datetime) -> bool:
        return not self.none_fresh and day in self.rolled and day not in self.stale

    def total_known(self, day: datetime) -> bool:
        """Whether the running total before `day` is stored (or is nothing at all)."""
        return day - DAY in self.rolled or day == self.first


def freshness(session: Session, since: datetime) -> Freshness:
    marks = session.scalars(select(SlaDirty.started_at).order_by(SlaDirty.id).limit(READ_MARKS + 1)).all()
    found = session.execute(
        select(SlaRollupDay.day, literal(False).label("first"))
        .where(SlaRollupDay.day >= floor_day(since) - DAY)
        .union_all(select(func.min(SlaRollupDay.day), literal(True)))
    ).all()
    rolled = [as_utc(day) for day, first in found if not first]
    first = next((as_utc(day) for day, is_first in found if is_first and day is not None), None)
    return Freshness(rolled=frozenset(rolled), first=first,
                     stale=frozenset(floor_day(as_utc(at)) for at in marks if at is not None),
                     none_fresh=len(marks) > READ_MARKS)


@dataclass(frozen=True)
class Group:
    """One team and priority over the window: the counts (n0..n4 of bin COUNTS) and,
    per clock, the median's bins as (bin, count, values below it, values in all)."""

    team: str
    priority: str
    counts: tuple[int, ...]
    response: tuple[tuple[int, int, int, int], ...]
    resolution: tuple[tuple[int, int, int, int], ...]

    def median(self, resolution: bool) -> float | None:
        bins = self.resolution if resolution else self.response
        if not bins:
            return None
        size = bins[0][3]
        found = [place(index, rank, below, count) for rank in ((size - 1) // 2, size // 2)
                 for index, count, below, _ in bins if below <= rank < below + count]
        return sum(found) / len(found)


def window_groups(session: Session, since: datetime) -> list[Group]:
    """The SLA figures of the tickets started since `since`, per team and priority, in
    one statement: runs of whole, freshly rolled days from the running totals at their
    ends, the rest live; summed, and of each histogram only the bins that hold the
    median (a running sum by bin picks them), so a few rows come back."""
    live_ranges, runs, taken = _plan(freshness(session, since), since)
    ranges = _merge(live_ranges)
    params: dict[str, object] = dict(stats_facts.params_of(ranges))
    params.update(stats_facts.params_of(taken, prefix="taken_") if taken else {})
    # A short run reads its days' own rows (~1,500 a day here), a long one the running
    # totals at its two ends (~4,400 each, whatever its length).
    short = [run for run in runs if run[1] - run[0] <= DAY * SHORT_RUN_DAYS]
    long = [run for run in runs if run not in short]
    params.update(ends=[end for _, end in long], days=[d for run in long for d in run],
                  own=[run[0] + DAY * i for run in short for i in range((run[1] - run[0]) // DAY)])
    query = _groups_statement(stats_facts.shape_of(ranges), stats_facts.shape_of(taken), bool(long),
                              bool(short))
    found: dict[tuple[str, str], list] = {}
    for team, priority, index, *values in session.execute(query, params):
        entry = found.setdefault((team, priority), [(0,) * len(_VALUES), [], []])
        if index == COUNTS:
            entry[0] = tuple(int(v or 0) for v in values)
        else:
            resolution = index >= RESOLUTION_BINS
            own = index - RESOLUTION_BINS if resolution else index
            entry[2 if resolution else 1].append((own, int(values[0]), int(values[1]), int(values[2])))
    return [Group(team, priority, tuple(entry[0]), tuple(entry[1]), tuple(entry[2]))
            for (team, priority), entry in found.items() if entry[0][0] > 0]


@functools.lru_cache(maxsize=64)
def _groups_statement(shape: stats_facts.Shape, taken: stats_facts.Shape, runs: bool, days: bool):
    """`window_groups`' statement, built once per shape of its live ranges (the times,
    and the days of the runs, are parameters)."""
    parts = _live_parts(stats_facts.placeholders(shape))
    if taken:
        parts += _live_parts(stats_facts.placeholders(taken, prefix="taken_"), sign=-1, name="taken")
    t = SlaRollup
    if days:
        parts.append(select(t.team, t.priority, t.bin, *[getattr(t, v) for v in _VALUES])
                     .where(t.kind == DAY_ROWS, t.day.in_(bindparam("own", expanding=True))))
    if runs:
        sign = case((t.day.in_(bindparam("ends", expanding=True)), 1), else_=-1)
        parts.append(select(t.team, t.priority, t.bin, *[(sign * getattr(t, v)) for v in _VALUES])
                     .where(t.kind == TOTALS, t.day.in_(bindparam("days", expanding=True))))
    facts = parts[0].union_all(*parts[1:]).subquery("facts")
    summed = (select(facts.c.team, facts.c.priority, facts.c.bin,
                     *[cast(func.sum(column), Integer).label(f"n{i}")
                       for i, column in enumerate(list(facts.c)[3:])])
              .group_by(facts.c.team, facts.c.priority, facts.c.bin).cte("summed"))
    clock = case((summed.c.bin >= RESOLUTION_BINS, 1), else_=0)
    group = [summed.c.team, summed.c.priority, clock]
    ranked = (select(summed.c.team, summed.c.priority, summed.c.bin, summed.c.n0,
                     func.sum(summed.c.n0).over(partition_by=group, order_by=summed.c.bin,
                                                rows=(None, 0)).label("upto"),
                     func.sum(summed.c.n0).over(partition_by=group).label("size"))
              .where(summed.c.bin >= 0, summed.c.n0 > 0).subquery("ranked"))
    below = ranked.c.upto - ranked.c.n0

    def holds(rank) -> ColumnElement[bool]:
        return and_(below <= rank, rank < ranked.c.upto)

    # Whole numbers: the halves floor, as the ranks of the middle values want.
    medians = (select(ranked.c.team, ranked.c.priority, ranked.c.bin, ranked.c.n0, below, ranked.c.size,
                      literal(0), literal(0))
               .where(or_(holds((ranked.c.size - 1) / 2), holds(ranked.c.size / 2))))
    return select(summed).where(summed.c.bin == COUNTS).union_all(medians)


def _plan(fresh: Freshness, since: datetime
          ) -> tuple[list[Range], list[tuple[datetime, datetime]], list[Range]]:
    """Which ranges to count live, which runs of whole days to read from the totals,
    and which ranges to take away from them: the window's first day, when it is rolled
    and its hours before `since` are fewer than those after, is read whole and the
    hours before `since` taken away (fewer rows counted live)."""
    start = floor_day(since)
    first_whole = start if start == since else start + DAY
    live_ranges: list[Range] = []
    taken: list[Range] = []
    if since < first_whole:
        if since - start < first_whole - since and fresh.fresh(start) and fresh.total_known(start):
            taken.append((start, since))
            first_whole = start
        else:
            live_ranges.append((since, first_whole))
    runs: list[tuple[datetime, datetime]] = []
    last = max(fresh.rolled, default=None)
    day = first_whole
    run_start: datetime | None = None
    while last is not None and day <= last:
        if fresh.fresh(day) and (run_start is not None or fresh.total_known(day)):
            run_start = day if run_start is None else run_start
        else:
            if run_start is not None:
                runs.append((run_start, day))
                run_start = None
            live_ranges.append((max(day, since), day + DAY))
        day += DAY
    if run_start is not None:
        runs.append((run_start, day))
    live_ranges.append((max(day, since), None))
    return live_ranges, runs, taken


def _merge(ranges: list[Range]) -> list[Range]:
    out: list[Range] = []
    for lo, hi in sorted(ranges, key=lambda r: r[0]):
        if out and out[-1][1] is not None and out[-1][1] >= lo:
            out[-1] = (out[-1][0], None if hi is None else max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


# ----- the job -------------------------------------------------------------------------------


def roll_up(session: Session, *, now: datetime, days_per_call: int = DAYS_PER_CALL) -> int:
    """One bounded pass: roll again the days changed since they were rolled, roll the
    whole days not rolled yet (oldest first, at most `days_per_call`), and recompute the
    running totals from the earliest of them; returns how many new days were rolled,
    plus 1 while marks are left over (0: nothing left). Flushes; the caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    horizon = floor_day(now) - DAY * KEEP_DAYS
    # Taken in the statement that deletes them: a mark committed after it stays.
    taken = select(SlaDirty.id).order_by(SlaDirty.id).limit(MARKS_PER_CALL).scalar_subquery()
    marks = session.execute(delete(SlaDirty).where(SlaDirty.id.in_(taken))
                            .returning(SlaDirty.started_at)).scalars().all()
    rolled = {as_utc(d) for d in session.scalars(select(SlaRollupDay.day))}
    changed = {floor_day(as_utc(at)) for at in marks if at is not None} & rolled
    new: list[datetime] = []
    backlog = len(marks) >= MARKS_PER_CALL
    if not backlog:  # past a backlog of marks, new days wait until they are read
        day = max(rolled) + DAY if rolled else _first_day(session, horizon)
        while day is not None and day + DAY <= now and len(new) < days_per_call:
            new.append(day)
            day += DAY
    for day in sorted(changed | set(new)):
        _roll_day(session, day, now)
    if changed or new:
        _totals_from(session, min(changed | set(new)), max(rolled | set(new)))
    for model, column in ((SlaRollup, SlaRollup.day), (SlaRollupDay, SlaRollupDay.day)):
        session.execute(delete(model).where(column < horizon))
    session.flush()
    return len(new) + backlog


def _first_day(session: Session, horizon: datetime) -> datetime | None:
    first = session.scalar(select(func.min(TicketSla.started_at)).where(TicketSla.started_at >= horizon))
    return None if first is None else floor_day(as_utc(first))


def _roll_day(session: Session, day: datetime, now: datetime) -> None:
    session.execute(delete(SlaRollup).where(SlaRollup.kind == DAY_ROWS, SlaRollup.day == day))
    rows = [{"kind": DAY_ROWS, "day": day, "team": team, "priority": priority, "bin": index,
             **dict(zip(_VALUES, values, strict=True))}
            for (team, priority, index), values in live(session, [(day, day + DAY)]).items()]
    for i in range(0, len(rows), 1000):
        session.execute(insert(SlaRollup), rows[i:i + 1000])
    session.execute(delete(SlaRollupDay).where(SlaRollupDay.day == day))
    session.add(SlaRollupDay(day=day, rolled_at=now))
    session.flush()


def _totals_from(session: Session, first: datetime, last: datetime) -> None:
    """The running totals after each day from `first` to `last`: the total before the
    day plus the day's rows, one day after the other."""
    t = SlaRollup
    day = first
    while day <= last:
        after = day + DAY
        session.execute(delete(t).where(t.kind == TOTALS, t.day == after))
        summed = (select(literal(TOTALS, SmallInteger), literal(after, t.day.type), t.team, t.priority, t.bin,
                         *[func.sum(getattr(t, v)) for v in _VALUES])
                  .where(or_(and_(t.kind == TOTALS, t.day == day), and_(t.kind == DAY_ROWS, t.day == day)))
                  .group_by(t.team, t.priority, t.bin))
        session.execute(insert(t).from_select(["kind", "day", "team", "priority", "bin", *_VALUES], summed))
        day = after
