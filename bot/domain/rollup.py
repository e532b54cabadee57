"""The stats rollup: figures per UTC day and hour kept by a job, so a window of any
length costs a few hundred rows plus at most an hour of live counting.

How a window's figures are made (`window_facts`): the window is the last N × 24 hours,
[since, now) (nothing after now exists). Whole UTC days inside it that the job rolled
and nothing changed since are read from their day rows; around them, whole hours the
same way from their hour rows; everything else (the minutes at both ends, the hour
under way, any hour not rolled or changed since it was) is counted live by the same
SQL (bot.domain.stats_facts). The trend's 24-hour slots end at `now`, not at midnight:
they add hour rows, minute rows around their edges, and live counting for the partial
minutes (`trend_counts`).

How the rollup stays right when outcomes change after their day (a late Yes or No,
stars, a rollback, a reopen, a person's resolution, a ticket given to another team):
database triggers (migration 0018r) append the ticket and the written row's time to
`stats_dirty` in the same transaction as the write, whichever code path writes. A
ticket's figures are all filed under its own rows' times, so the hours those fall in
are the only ones that can change; until the job rolls them again they are counted
live (`stale_hours`). A figure is never wrong because the job is late or did not run:
what is not rolled, or not freshly, is counted live; slower, not wrong.

The job (`roll_up`) takes a lock (PostgreSQL: an advisory lock; SQLite: the write lock
every writing transaction takes at its start), rolls again the hours of the dirty rows
it read (and sums their days again from the hour rows), deletes exactly those rows (a
mark appended meanwhile stays for the next pass), then rolls the whole hours not
rolled yet, oldest first, a bounded number of days per call. Two processes running
it at once take turns; running it again changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select, text, union_all, update
from sqlalchemy.orm import Session

from bot.domain import stats_facts
from bot.domain.stats_facts import TREND, WIDTH, Facts, Range
from models import (
    ActionHistory,
    PersonResolution,
    StatsDirty,
    StatsRollup,
    StatsRollupDay,
    TicketResolution,
    as_utc,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
# The longest window anyone can ask for (analytics.MAX_DAYS) and a day to spare.
KEEP_DAYS = 366
# Minute rows (the trend's slot edges) are kept for the trend's 14 days and two to spare.
MINUTE_DAYS = 16
# Days rolled and marks read per call, so one transaction stays short; the next call
# goes on.
DAYS_PER_CALL = 10
MARKS_PER_CALL = 20_000
# Past this many marks a reader counts everything live rather than read them all.
READ_MARKS = 5_000
LOCK_KEY = 0x5EA7_0018
# Bucket sizes in seconds: minutes (the trend's edges), hours, days.
GRAINS = (60, 3600, 86400)
_VALUES = [f"n{i}" for i in range(WIDTH - 1)] + ["x0"]


def floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def floor_day(at: datetime) -> datetime:
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


# ----- which hours are fresh ---------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """Up to when each day is rolled, and the hours changed since (from `stats_dirty`)."""

    rolled: dict[datetime, datetime]
    # The days that have minute rows (the trend's slot edges).
    minutes: frozenset[datetime]
    stale: frozenset[datetime]
    # Each mark read, and the days it touches.
    marks: dict[int, frozenset[datetime]]
    # Too many marks to read: nothing is fresh.
    none_fresh: bool = False
    stale_days: frozenset[datetime] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stale_days", frozenset(floor_day(h) for h in self.stale))

    def fresh_hour(self, hour: datetime) -> bool:
        day = floor_day(hour)
        return (not self.none_fresh and hour + HOUR <= self.rolled.get(day, day)
                and hour not in self.stale)

    def fresh_minutes(self, hour: datetime) -> bool:
        return self.fresh_hour(hour) and floor_day(hour) in self.minutes

    def fresh_day(self, day: datetime) -> bool:
        return (not self.none_fresh and self.rolled.get(day, day) >= day + DAY
                and day not in self.stale_days)


def freshness(session: Session, since: datetime, *, limit: int | None = None) -> Freshness:
    """What is rolled from `since`'s day on, and what changed since it was rolled.

    A mark names a ticket and the written row's time: the hours of that time and of
    every row of the ticket (its figures are all filed under those) are stale.

    Args:
        session: a session to read with.
        since: the earliest time the caller will count.
        limit: read at most this many marks, oldest first (the job); None (a reader):
            all of them, or, past READ_MARKS, none, and nothing is fresh.
    """
    marks = (select(StatsDirty.id, StatsDirty.ticket_id, StatsDirty.at).order_by(StatsDirty.id)
             .limit(READ_MARKS + 1 if limit is None else limit))
    read = marks.subquery("marks")
    # Every row of each marked ticket, in one statement: their times are where its
    # figures are filed.
    rows = union_all(*[select(model.ticket_id, column.label("at")) for model, column in (
        (ActionHistory, ActionHistory.executed_at), (TicketResolution, TicketResolution.created_at),
        (PersonResolution, PersonResolution.created_at))]).subquery("rows")
    found = session.execute(select(read.c.id, read.c.at, rows.c.at).select_from(read)
                            .outerjoin(rows, rows.c.ticket_id == read.c.ticket_id)).all()
    hours_of: dict[int, set[datetime]] = {}
    for mark_id, mark_at, row_at in found:
        hours = hours_of.setdefault(mark_id, set())
        for at in (mark_at, row_at):
            if at is not None:
                hours.add(floor_hour(as_utc(at)))
    if limit is None and len(hours_of) > READ_MARKS:
        return Freshness(rolled={}, minutes=frozenset(), stale=frozenset(), marks={}, none_fresh=True)
    stale: set[datetime] = set()
    days: dict[int, frozenset[datetime]] = {}
    for mark_id, hours in hours_of.items():
        stale |= hours
        days[mark_id] = frozenset(floor_day(h) for h in hours)
    found = session.execute(select(StatsRollupDay.day, StatsRollupDay.rolled_until, StatsRollupDay.minutes)
                            .where(StatsRollupDay.day >= floor_day(since))).all()
    return Freshness(rolled={row.day: row.rolled_until for row in found},
                     minutes=frozenset(row.day for row in found if row.minutes),
                     stale=frozenset(stale), marks=days)


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _merge(ranges: list[Range]) -> list[Range]:
    out: list[Range] = []
    for lo, hi in sorted(ranges, key=lambda r: r[0]):
        if out and (out[-1][1] is None or out[-1][1] >= lo):
            prev_hi = out[-1][1]
            out[-1] = (out[-1][0], None if hi is None or prev_hi is None else max(prev_hi, hi))
        else:
            out.append((lo, hi))
    return out


# ----- reading -----------------------------------------------------------------------------


@contextmanager
def without_parallel_workers(session: Session) -> Iterator[None]:
    """Run the stats' statements without PostgreSQL's parallel workers, then restore.

    Each reads a few thousand rows at most (rollup rows, an hour of live rows), in
    milliseconds; a parallel plan's workers are processes to start, which on a busy
    machine cost up to ten times the work itself (bench/queries.py: 15 ms of work, 140
    ms until the workers reported). A no-op on SQLite.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = session.execute(text(
        "SELECT current_setting('max_parallel_workers_per_gather'), "
        "set_config('max_parallel_workers_per_gather', '0', true)")).scalar_one()
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('max_parallel_workers_per_gather', :value, true)"),
                        {"value": previous})


def window_facts(session: Session, since: datetime, now: datetime, fresh: Freshness) -> Facts:
    """Every family's facts from `since` on: fresh rolled days and hours, the rest live.

    Args:
        session: a session to read with; nothing is written.
        since: the window's start (tz-aware).
        now: the window's end; anything after it (there should be nothing) is counted too.
        fresh: `freshness(session, since)`.

    Returns:
        The facts, summed over the window.
    """
    days: list[Range] = []
    hours: list[Range] = []
    live: list[Range] = []
    day = floor_day(since)
    while day <= now:
        if day >= since and fresh.fresh_day(day):
            days.append((day, day + DAY))
        elif fresh.none_fresh or day not in fresh.rolled:
            live.append((max(day, since), day + DAY))
        else:
            for hour in (day + HOUR * h for h in range(24)):
                if hour >= since and fresh.fresh_hour(hour):
                    hours.append((hour, hour + HOUR))
                elif hour + HOUR > since:
                    live.append((max(hour, since), hour + HOUR))
        day += DAY
    live.append((max(since, day), None))
    facts = _stored(session, 86400, _merge(days))
    _sum_into(facts, _stored(session, 3600, _merge(hours)))
    _sum_into(facts, stats_facts.compute(session, _merge(live)).get(0, {}))
    return facts


def _stored(session: Session, seconds: int, ranges: list[Range]) -> Facts:
    if not ranges:
        return {}
    table = StatsRollup
    query = (select(table.family, table.key_a, table.key_b, table.key_c,
                    *[func.sum(getattr(table, v)) for v in _VALUES])
             .where(table.bucket_seconds == seconds, table.family != TREND.name,
                    stats_facts.within(table.bucket_start, ranges))
             .group_by(table.family, table.key_a, table.key_b, table.key_c))
    return {(row[0], row[1], row[2], row[3]): [v or 0 for v in row[4:]] for row in session.execute(query)}


def _sum_into(facts: Facts, more: Facts) -> None:
    for key, values in more.items():
        row = facts.setdefault(key, [0] * WIDTH)
        for i, value in enumerate(values):
            row[i] += value


def trend_counts(session: Session, since: datetime, now: datetime, slots: int, fresh: Freshness
                 ) -> list[tuple[int, int]]:
    """(confirmed, answered) of the bot's actions per 24-hour slot of [since, now),
    oldest first: hour rows inside a slot, minute rows in the hours a slot's edge cuts,
    and live counting for the minutes an edge cuts and for hours not freshly rolled."""
    starts = [since + DAY * d for d in range(slots)]
    cuts = sorted({since, now, *starts})

    def slot(at: datetime) -> int:
        return min(int((at - since) // DAY), slots - 1)

    edges = {floor_hour(c) for c in cuts if c != floor_hour(c)}
    whole, cut_hours, live = [], [], []
    hour = floor_hour(since)
    while hour < now:
        if not fresh.fresh_minutes(hour):
            live.append((max(hour, since), min(hour + HOUR, now)))
        elif hour in edges:
            cut_hours.append(hour)
        else:
            whole.append(hour)
        hour += HOUR
    counts = [[0, 0] for _ in starts]
    table = StatsRollup
    if whole:
        # The trend's own hour rows (one per hour), read as one range.
        wanted = set(whole)
        found = session.execute(
            select(table.bucket_start, table.n0, table.n1)
            .where(table.bucket_seconds == 3600, table.family == TREND.name,
                   table.bucket_start >= whole[0], table.bucket_start <= whole[-1]))
        for start, confirmed, answered in found:
            if start in wanted:
                counts[slot(start)][0] += confirmed
                counts[slot(start)][1] += answered
    if cut_hours:
        # The minute rows of those hours, summed per slot in SQL; a minute an edge cuts,
        # or outside the window, is counted live instead.
        hours = _merge([(h, h + HOUR) for h in cut_hours])
        cut_minutes = sorted({floor_minute(c) for c in cuts if c != floor_minute(c)})
        params = {**stats_facts.params_of(hours, starts), "since": since, "upper": floor_minute(now),
                  "cut": cut_minutes or [since - DAY]}
        for index, confirmed, answered in session.execute(
                _minutes_by_slot(stats_facts.shape_of(hours), len(starts)), params):
            if index >= 0:
                counts[index][0] += int(confirmed or 0)
                counts[index][1] += int(answered or 0)
        for c in cuts:
            if floor_hour(c) in cut_hours and c != floor_minute(c):
                live.append((max(floor_minute(c), since), min(floor_minute(c) + MINUTE, now)))
    ranges = _merge([r for r in live if r[0] < r[1]])
    for (index, outcome), n in stats_facts.outcomes_by_bucket(session, ranges, starts).items():
        if index >= 0:  # the ranges lie in [since, now): the last slot ends at now
            counts[index][0] += n * (outcome == stats_facts.CONFIRMED)
            counts[index][1] += n * (outcome in (stats_facts.CONFIRMED, stats_facts.REOPENED))
    return [(c, a) for c, a in counts]


@functools.lru_cache(maxsize=64)
def _minutes_by_slot(shape: stats_facts.Shape, slots: int):
    table = StatsRollup
    starts: list = [bindparam(f"start_{i}") for i in range(slots)]
    index = stats_facts.bucket_of(table.bucket_start, starts).label("slot")
    return (select(index, func.sum(table.n0), func.sum(table.n1))
            .where(table.bucket_seconds == 60, table.family == TREND.name,
                   stats_facts.within(table.bucket_start, stats_facts.placeholders(shape)),
                   table.bucket_start >= bindparam("since"), table.bucket_start < bindparam("upper"),
                   table.bucket_start.not_in(bindparam("cut", expanding=True)))
            .group_by(index))


# ----- the job -----------------------------------------------------------------------------


def roll_up(session: Session, *, now: datetime, days_per_call: int = DAYS_PER_CALL) -> int:
    """One bounded pass of the rollup: roll again the hours changed since they were
    rolled, and roll the whole hours not rolled yet, oldest day first; returns how many
    days were rolled (0: nothing left). Flushes; the caller commits.

    Args:
        session: a session in the job's transaction.
        now: the job's clock; only hours ended by then are rolled.
        days_per_call: at most this many days per call (the next call goes on).
    """
    _lock(session)
    horizon = floor_day(now) - DAY * KEEP_DAYS
    fresh = freshness(session, horizon, limit=MARKS_PER_CALL)
    # Rolled days a change touched: their changed hours are rolled again.
    changed: dict[datetime, set[datetime]] = {}
    for hour in fresh.stale:
        day = floor_day(hour)
        if horizon <= day <= now and day in fresh.rolled:
            changed.setdefault(day, set()).add(hour)
    # Days not rolled, or rolled only in part: rolled whole.
    wanted: set[datetime] = set()
    # Past a backlog of marks (a bulk load, a job long stopped), new days wait until the
    # marks are read: a day rolled now would be re-rolled for every older mark after.
    backlog = len(fresh.marks) >= MARKS_PER_CALL
    # From the oldest data kept (nothing at all: nothing to roll).
    first = None if backlog else _first_data(session, horizon)
    day = floor_day(first) if first is not None else now + DAY
    while day <= now:
        if fresh.rolled.get(day, day) < min(day + DAY, floor_hour(now)):
            wanted.add(day)
        day += DAY
    done = sorted(wanted | changed.keys())[:days_per_call]
    for day in done:
        if day in wanted:
            _roll_day(session, day, now)
        else:
            _roll_hours(session, day, sorted(changed[day]), fresh, now)
    # A mark is done once every rolled day it touches was rolled again just now; a day
    # not rolled yet will be rolled from the data as it is then.
    settled = set(done)
    _forget(session, [mark for mark, days in fresh.marks.items()
                      if all(d in settled or d not in fresh.rolled or d < horizon for d in days)])
    old = floor_day(now) - DAY * MINUTE_DAYS
    session.execute(delete(StatsRollup).where(StatsRollup.bucket_seconds.in_((60, 3600)),
                                              StatsRollup.family == TREND.name,
                                              StatsRollup.bucket_start < old))
    session.execute(update(StatsRollupDay).where(StatsRollupDay.day < old, StatsRollupDay.minutes.is_(True))
                    .values(minutes=False))
    session.execute(delete(StatsRollup).where(StatsRollup.bucket_seconds.in_(GRAINS),
                                              StatsRollup.bucket_start < horizon))
    session.execute(delete(StatsRollupDay).where(StatsRollupDay.day < horizon))
    session.flush()
    return len(done) + backlog


def _forget(session: Session, ids: list[int]) -> None:
    for chunk in _chunks(ids, 1000):
        session.execute(delete(StatsDirty).where(StatsDirty.id.in_(chunk)))


def _lock(session: Session) -> None:
    # On SQLite the job's transaction holds the write lock from its start already.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _first_data(session: Session, horizon: datetime) -> datetime | None:
    found = [session.scalar(select(func.min(column)).where(column >= horizon)) for column in (
        ActionHistory.executed_at, TicketResolution.created_at, PersonResolution.created_at)]
    present = [at for at in found if at is not None]
    return min(present) if present else None


def _roll_day(session: Session, day: datetime, now: datetime) -> None:
    """Replace all the day's rows: hours, the day once whole, minutes when recent."""
    until = min(day + DAY, floor_hour(now))
    starts = [day + HOUR * h for h in range(int((until - day) / HOUR))]
    session.execute(delete(StatsRollup).where(StatsRollup.bucket_seconds.in_(GRAINS),
                                              StatsRollup.bucket_start >= day,
                                              StatsRollup.bucket_start < day + DAY))
    session.execute(delete(StatsRollupDay).where(StatsRollupDay.day == day))
    if not starts:
        return
    recent = day >= floor_day(now) - DAY * MINUTE_DAYS
    rows, per_hour = _hour_rows(session, starts, minutes=recent)
    if until == day + DAY:
        whole: Facts = {}
        for facts in per_hour.values():
            _sum_into(whole, facts)
        rows += [_row(day, 86400, key, values) for key, values in whole.items()]
    _insert(session, rows)
    session.add(StatsRollupDay(day=day, rolled_until=until, rolled_at=now, minutes=recent))
    session.flush()


def _roll_hours(session: Session, day: datetime, hours: list[datetime], fresh: Freshness,
                now: datetime) -> None:
    """Replace the rows of some hours of a rolled day (those a change touched), and the
    day's rows, summed again from its hour rows: a late answer costs its hours, not
    its day."""
    until = fresh.rolled[day]
    hours = [h for h in hours if h + HOUR <= until]
    ranges = _merge([(h, h + HOUR) for h in hours])
    session.execute(delete(StatsRollup).where(StatsRollup.bucket_seconds.in_((60, 3600)),
                                              stats_facts.within(StatsRollup.bucket_start, ranges)))
    session.execute(delete(StatsRollup).where(StatsRollup.bucket_seconds == 86400,
                                              StatsRollup.bucket_start == day))
    rows, _ = _hour_rows(session, hours, minutes=day in fresh.minutes)
    _insert(session, rows)
    if until == day + DAY:
        table = StatsRollup
        summed = session.execute(
            select(table.family, table.key_a, table.key_b, table.key_c,
                   *[func.sum(getattr(table, v)) for v in _VALUES])
            .where(table.bucket_seconds == 3600, table.family != TREND.name,
                   table.bucket_start >= day, table.bucket_start < day + DAY)
            .group_by(table.family, table.key_a, table.key_b, table.key_c))
        _insert(session, [_row(day, 86400, (r[0], r[1], r[2], r[3]), list(r[4:])) for r in summed])
    session.execute(update(StatsRollupDay).where(StatsRollupDay.day == day).values(rolled_at=now))
    session.flush()


def _hour_rows(session: Session, starts: list[datetime], *, minutes: bool
               ) -> tuple[list[dict], dict[int, Facts]]:
    """The rows of these whole hours: every family per hour, and with `minutes` the
    trend's minute and hour rows; also the facts per hour (index into `starts`)."""
    ranges = _merge([(h, h + HOUR) for h in starts])
    per_hour = stats_facts.compute(session, ranges, starts=starts)
    rows = [_row(starts[i], 3600, key, values)
            for i, facts in per_hour.items() for key, values in facts.items()]
    if minutes:
        by_minute: dict[datetime, list[int]] = {}
        for at, outcome in stats_facts.outcomes_at(session, ranges):
            counts = by_minute.setdefault(floor_minute(at), [0, 0])
            counts[0] += outcome == stats_facts.CONFIRMED
            counts[1] += outcome in (stats_facts.CONFIRMED, stats_facts.REOPENED)
        by_hour: dict[datetime, list[int]] = {}
        for m, (c, a) in by_minute.items():
            hourly = by_hour.setdefault(floor_hour(m), [0, 0])
            hourly[0] += c
            hourly[1] += a
        rows += [_row(m, seconds, (TREND.name, "", "", ""), [c, a] + [0] * (WIDTH - 2))
                 for seconds, found in ((60, by_minute), (3600, by_hour)) for m, (c, a) in found.items()]
    return rows, per_hour


def _insert(session: Session, rows: list[dict]) -> None:
    for chunk in _chunks(rows, 1000):
        session.execute(insert(StatsRollup), chunk)


def _row(start: datetime, seconds: int, key: tuple[str, str, str, str], values: Sequence) -> dict:
    row = {"bucket_start": start, "bucket_seconds": seconds, "family": key[0], "key_a": key[1],
           "key_b": key[2], "key_c": key[3]}
    row.update({name: values[i] for i, name in enumerate(_VALUES)})
    return row
