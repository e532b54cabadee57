"""The SLA table's rollup (bot.domain.sla_rollup): rollup plus live counting gives
exactly the figures of counting every `ticket_sla` row of the window in plain Python,
on PostgreSQL and SQLite, for generated clocks, including clocks that stop, breach,
reopen or change team after the rollup ran, rows measured for the first time late,
writes rolled back, and a job rolled back; for windows of 1, 7, 30, 90 and 365 days
whether the job ran, ran in part, or two ran at once. The medians (from histograms) are
also within PRECISION of the exact medians of the stopped clocks.
"""

from __future__ import annotations

import random
import statistics
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import sla, sla_rollup
from models import SlaDirty, SlaRollup, TicketSla, transaction
from tests.support.factories import make_ticket

# The job's clock: not on a whole day, so every window has partial days at both ends.
JOB = datetime(2026, 11, 25, 14, 37, 21, tzinfo=UTC)
TEAMS = ("Network", "Accounts", "Security")
PRIORITIES = ("critical", "high", "normal")
WINDOWS = (1, 7, 30, 90, 365)
# Where the stats are asked for: the job's time, before it, after it (not rolled yet).
READ_AT = (JOB, JOB - timedelta(days=3, hours=5, minutes=13), JOB + timedelta(hours=2, seconds=7),
           JOB + timedelta(days=1, hours=12, minutes=1))


def _clock(session: Session, rng: random.Random, started_at: datetime) -> TicketSla:
    """One ticket's SLA row as the check_sla job leaves it: running, responded, or done,
    within or past its targets."""
    ticket = make_ticket(session, created_at=started_at)
    responded, resolved = rng.random() < 0.8, rng.random() < 0.6
    response_target, resolution_target = rng.choice([(900, 14400), (3600, 28800), (14400, 86400)])
    response = rng.choice([rng.randint(0, 40), rng.randint(0, 3 * response_target)])
    resolution = rng.randint(response, response + 3 * resolution_target)
    row = TicketSla(
        ticket_id=ticket.ticket_id, priority=rng.choice(PRIORITIES), team=rng.choice(TEAMS),
        started_at=started_at, response_target_s=response_target, resolution_target_s=resolution_target,
        response_s=response if responded else None,
        resolution_s=resolution if responded and resolved else None, elapsed_s=resolution,
        response_breached_at=started_at if response > response_target and rng.random() < 0.7 else None,
        resolution_breached_at=started_at if resolution > resolution_target and rng.random() < 0.7 else None,
        settled=responded and resolved, updated_at=started_at)
    session.add(row)
    return row


def _history(session: Session, rng: random.Random, *, tickets: int, span_days: int) -> list[TicketSla]:
    rows = [_clock(session, rng, JOB - timedelta(seconds=rng.randint(-3600, span_days * 86400)))
            for _ in range(tickets)]
    session.flush()
    return rows


def _late_changes(session: Session, rng: random.Random, rows: list[TicketSla]) -> None:
    """What the check_sla job writes after the rollup ran."""
    for row in rng.sample(rows, k=min(len(rows), 10)):
        change = rng.randrange(6)
        if change == 0:  # the response clock stops
            row.response_s = rng.randint(0, 2 * row.response_target_s)
        elif change == 1:  # the resolution clock stops
            row.resolution_s = (row.response_s or 0) + rng.randint(0, 2 * row.resolution_target_s)
            row.settled = True
        elif change == 2:  # a breach flagged on a running clock
            row.resolution_breached_at = JOB
        elif change == 3:  # reopened: the resolution clock runs again
            row.resolution_s = None
            row.settled = False
        elif change == 4:  # given to another team, or its priority decided
            row.team = "Moved"
            row.priority = rng.choice(PRIORITIES)
        else:  # only what the figures do not read: no mark
            row.elapsed_s += 60
            row.next_check_at = JOB
    # A ticket of an old day measured for the first time only now.
    _clock(session, rng, JOB - timedelta(days=rng.randint(2, 20), minutes=rng.randint(0, 1000)))
    session.delete(rng.choice(rows))
    session.flush()


def _full(session: Session, since: datetime) -> tuple[sla.SlaRow, ...]:
    """Every row of the window, counted one by one in Python."""
    groups: dict[tuple[str, str], list[TicketSla]] = {}
    for row in session.scalars(select(TicketSla).where(TicketSla.started_at >= since)):
        groups.setdefault((row.team, row.priority), []).append(row)
    out = []
    for (team, priority), rows in groups.items():
        def histogram(values: list[int | None]) -> dict[int, int]:
            found: dict[int, int] = {}
            for value in values:
                if value is not None:
                    found[sla_rollup.bin_of(value)] = found.get(sla_rollup.bin_of(value), 0) + 1
            return found

        def late(at, seconds, target) -> bool:
            return at is not None or (seconds is not None and seconds > target)

        out.append(sla.SlaRow(
            team=team, priority=priority, tickets=len(rows),
            response_met=sum(r.response_s is not None and r.response_s <= r.response_target_s for r in rows),
            response_breached=sum(late(r.response_breached_at, r.response_s, r.response_target_s)
                                  for r in rows),
            resolution_met=sum(r.resolution_s is not None and r.resolution_s <= r.resolution_target_s
                               for r in rows),
            resolution_breached=sum(late(r.resolution_breached_at, r.resolution_s, r.resolution_target_s)
                                    for r in rows),
            median_response_s=sla_rollup.median(histogram([r.response_s for r in rows])),
            median_resolution_s=sla_rollup.median(histogram([r.resolution_s for r in rows]))))
    order = {p: n for n, p in enumerate(PRIORITIES)}
    return tuple(sorted(out, key=lambda r: (r.team.casefold(), order[r.priority])))


def _assert_same(session: Session, now: datetime) -> None:
    for days in WINDOWS:
        since = now - timedelta(days=days)
        found = sla.sla_stats(session, since=since)
        assert found == _full(session, since), (days, now)
        for row in found:  # and the medians near the exact ones
            for column, got in ((TicketSla.response_s, row.median_response_s),
                                (TicketSla.resolution_s, row.median_resolution_s)):
                values = session.scalars(select(column).where(
                    TicketSla.started_at >= since, TicketSla.team == row.team,
                    TicketSla.priority == row.priority, column.is_not(None))).all()
                if values:
                    assert got == pytest.approx(statistics.median(values), rel=sla_rollup.PRECISION, abs=0.5)


def _roll_all(session: Session, now: datetime = JOB) -> None:
    while sla_rollup.roll_up(session, now=now):
        pass


def _scenario(session: Session, seed: int, *, tickets: int, span_days: int, partial: bool) -> None:
    rng = random.Random(seed)
    rows = _history(session, rng, tickets=tickets, span_days=span_days)
    for now in READ_AT[:2]:
        _assert_same(session, now)  # nothing rolled: everything live
    _roll_all(session)
    assert session.scalar(select(SlaDirty.id).limit(1)) is None
    _assert_same(session, JOB)
    _late_changes(session, rng, rows)
    # Not rolled again yet: the changed days are counted live.
    for now in READ_AT:
        _assert_same(session, now)
    if partial:  # the job ran again, but only in part
        sla_rollup.roll_up(session, now=JOB + timedelta(days=2), days_per_call=1)
    else:
        _roll_all(session, JOB + timedelta(days=2))
    for now in READ_AT:
        _assert_same(session, now)


@hypothesis_settings(max_examples=4, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), tickets=st.integers(5, 60), partial=st.booleans())
def test_rollup_plus_live_is_the_full_count_on_postgresql(session, seed, tickets, partial):
    nested = session.begin_nested()
    try:
        _scenario(session, seed, tickets=tickets, span_days=45, partial=partial)
    finally:
        nested.rollback()


@hypothesis_settings(max_examples=3, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), tickets=st.integers(5, 40), partial=st.booleans())
def test_rollup_plus_live_is_the_full_count_on_sqlite(sqlite_sessions, seed, tickets, partial):
    with sqlite_sessions() as session:
        try:
            _scenario(session, seed, tickets=tickets, span_days=40, partial=partial)
        finally:
            session.rollback()


def test_a_year_of_history_and_a_change_older_than_the_window(session):
    rows = _history(session, random.Random(7), tickets=60, span_days=400)
    _roll_all(session)
    _assert_same(session, JOB)
    old = min(rows, key=lambda r: r.started_at)
    old.response_s, old.team = 5, "Moved"
    session.flush()
    _roll_all(session)
    for now in READ_AT:
        _assert_same(session, now)


def test_a_clock_that_stops_after_the_rollup_is_counted_live_until_rolled_again(session):
    rows = _history(session, random.Random(11), tickets=30, span_days=10)
    _roll_all(session)
    running = next(r for r in rows if r.resolution_s is None and r.started_at < JOB - timedelta(days=1))
    before = {(r.team, r.priority): r for r in sla.sla_stats(session, since=JOB - timedelta(days=30))}
    running.resolution_s, running.settled = 60, True  # resolved in a minute, after the rollup ran
    session.flush()
    day = sla_rollup.floor_day(running.started_at)
    assert day in sla_rollup.freshness(session, JOB - timedelta(days=30)).stale
    after = {(r.team, r.priority): r for r in sla.sla_stats(session, since=JOB - timedelta(days=30))}
    key = (running.team, running.priority)
    assert after[key].resolution_met == before[key].resolution_met + (60 <= running.resolution_target_s)
    _assert_same(session, JOB)
    _roll_all(session)
    assert not sla_rollup.freshness(session, JOB - timedelta(days=30)).stale
    _assert_same(session, JOB)


def test_rolled_back_writes_and_a_rolled_back_job_leave_the_figures_right(session):
    rows = _history(session, random.Random(13), tickets=30, span_days=10)
    _roll_all(session)
    writes = session.begin_nested()  # a check_sla transaction that fails
    rows[0].response_s, rows[0].team = 1, "Moved"
    session.flush()
    writes.rollback()
    _assert_same(session, JOB)
    rows[1].resolution_s, rows[1].resolution_breached_at = None, JOB  # reopened, and committed
    session.flush()
    job = session.begin_nested()  # a job run that fails after taking the marks
    sla_rollup.roll_up(session, now=JOB)
    job.rollback()
    assert session.scalar(select(SlaDirty.id).limit(1)) is not None
    _assert_same(session, JOB)
    _roll_all(session)
    _assert_same(session, JOB)


def test_running_the_job_again_changes_nothing(session):
    _history(session, random.Random(3), tickets=25, span_days=20)
    _roll_all(session)

    def stored():
        return sorted(tuple(row) for row in session.execute(select(
            SlaRollup.kind, SlaRollup.day, SlaRollup.team, SlaRollup.priority, SlaRollup.bin,
            SlaRollup.n0, SlaRollup.n1, SlaRollup.n2, SlaRollup.n3, SlaRollup.n4)))

    before = stored()
    assert before
    assert sla_rollup.roll_up(session, now=JOB) == 0
    assert stored() == before


def test_two_jobs_at_once_leave_the_same_figures(racing_factory):
    with transaction(racing_factory) as session:
        ids = [row.ticket_id for row in _history(session, random.Random(5), tickets=30, span_days=25)]
    errors: list[BaseException] = []

    def job() -> None:
        try:
            while True:
                with transaction(racing_factory) as session:
                    if not sla_rollup.roll_up(session, now=JOB, days_per_call=4):
                        return
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    runners = [threading.Thread(target=job) for _ in range(2)]
    for runner in runners:
        runner.start()
    with transaction(racing_factory) as session:  # clocks stopping while they run
        for ticket_id in ids[:3]:
            row = session.get(TicketSla, ticket_id)
            assert row is not None
            row.response_s, row.resolution_s = 30, 90
    for runner in runners:
        runner.join()
    assert not errors
    with racing_factory() as session:
        for now in (JOB, JOB - timedelta(days=2, minutes=7)):
            _assert_same(session, now)
        session.rollback()


def test_a_median_of_seconds_is_exact_and_any_median_within_precision():
    rng = random.Random(23)
    for _ in range(200):
        values = [rng.randint(0, 25) for _ in range(rng.randint(1, 9))]
        histogram = _counted(values)
        assert sla_rollup.median(histogram) == statistics.median(values)
        values = [rng.randint(0, 10**6) for _ in range(rng.randint(1, 9))]
        assert sla_rollup.median(_counted(values)) == pytest.approx(
            statistics.median(values), rel=sla_rollup.PRECISION)


def _counted(values: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for value in values:
        found[sla_rollup.bin_of(value)] = found.get(sla_rollup.bin_of(value), 0) + 1
    return found


def test_a_backlog_of_marks_is_read_over_several_calls(session, monkeypatch):
    rows = _history(session, random.Random(19), tickets=25, span_days=12)
    _roll_all(session)
    _late_changes(session, random.Random(20), rows)
    monkeypatch.setattr(sla_rollup, "MARKS_PER_CALL", 3)
    assert sla_rollup.roll_up(session, now=JOB) == 1  # marks left: call again
    _roll_all(session)
    assert session.scalar(select(SlaDirty.id).limit(1)) is None
    for now in READ_AT[:2]:
        _assert_same(session, now)


def test_too_many_changes_waiting_are_counted_live(session, monkeypatch):
    rows = _history(session, random.Random(17), tickets=25, span_days=12)
    _roll_all(session)
    _late_changes(session, random.Random(18), rows)
    monkeypatch.setattr(sla_rollup, "READ_MARKS", 2)
    assert sla_rollup.freshness(session, JOB - timedelta(days=30)).none_fresh
    for now in READ_AT[:2]:
        _assert_same(session, now)
