"""The stats rollup (bot.domain.rollup): rollup plus live counting gives exactly the
figures of counting everything over the window (tests/support/full_stats.py, the
straightforward queries as they were), on PostgreSQL and SQLite, for generated
histories, including rollbacks, late answers, stars, people's resolutions and team
changes that arrive after the rollup ran; for windows of 1, 7, 30, 90 and 365 days at
moved times; whether the job ran, ran late, ran in part, or two ran at once.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import time_machine
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import analytics, rollup
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    ActionType,
    PersonResolution,
    StatsDirty,
    StatsRollup,
    StatsRollupDay,
    Ticket,
    TicketResolution,
    TicketStatus,
    transaction,
)
from tests.support.full_stats import full_resolution_stats

# The job's clock: not on a whole hour, so every window has partial hours and minutes.
JOB = datetime(2026, 11, 25, 14, 37, 21, tzinfo=UTC)
TEAMS = ("Network", "Accounts", "Security", None)
WINDOWS = (1, 7, 30, 90, 365)
# Where the stats are asked for: the job's time, before it (rolled rows after `now`
# exist), a few hours and a day and a half after it (not rolled yet).
READ_AT = (JOB, JOB - timedelta(days=3, hours=5, minutes=13), JOB + timedelta(hours=2, seconds=7),
           JOB + timedelta(days=1, hours=12, minutes=1))


def _history(session: Session, rng: random.Random, *, tickets: int, span_days: int) -> list[ActionHistory]:
    """Tickets with one to three bot actions each (an AUTO_RESOLVE last, with its
    resolution), people's takes and resolutions, answers, stars and rollbacks."""
    acts: list[ActionHistory] = []
    for _ in range(tickets):
        at = JOB - timedelta(seconds=rng.randint(0, span_days * 86400))
        ticket = Ticket(user_id="UREQ", issue_type="vpn", description="vpn", status=TicketStatus.NEW,
                        assigned_team=rng.choice(TEAMS), tags=[], created_at=at, updated_at=at)
        session.add(ticket)
        session.flush()
        kinds = [rng.choice(AGENT_ACTIONS) for _ in range(rng.randint(1, 3))]
        if ActionType.AUTO_RESOLVE in kinds:  # one resolution per ticket: the last act
            kinds = [k for k in kinds if k != ActionType.AUTO_RESOLVE] + [ActionType.AUTO_RESOLVE]
        for kind in kinds:
            at += timedelta(seconds=rng.randint(0, 3 * 86400))
            autonomous = rng.random() < 0.7
            # Binary fractions: float sums are exact in any order (averages are sums).
            confidence = rng.choice([None, rng.randint(0, 16) / 16])
            action = ActionHistory(ticket_id=ticket.ticket_id, action_type=kind, executed_at=at,
                                   autonomous=autonomous, confidence_score=confidence,
                                   rolled_back=rng.random() < 0.1)
            session.add(action)
            session.flush()
            acts.append(action)
            if kind == ActionType.AUTO_RESOLVE:
                answer = rng.choice([None, True, False])
                session.add(TicketResolution(
                    ticket_id=ticket.ticket_id, action_id=action.id, autonomous_action=kind,
                    resolution_confirmed=answer, reopened=answer is False or rng.random() < 0.1,
                    satisfaction_score=rng.choice([None, 1, 2, 3, 4, 5]), created_at=at, updated_at=at))
        if rng.random() < 0.4:
            at += timedelta(seconds=rng.randint(-3600, 2 * 86400))
            session.add(ActionHistory(ticket_id=ticket.ticket_id, action_type=ActionType.TAKE,
                                      executed_at=at, executed_by="UHELP", rolled_back=rng.random() < 0.2))
            resolve = ActionHistory(ticket_id=ticket.ticket_id, action_type=ActionType.RESOLVE,
                                    executed_at=at, executed_by="UHELP", rolled_back=rng.random() < 0.15)
            session.add(resolve)
            session.flush()
            answer = rng.choice([None, True, False])
            session.add(PersonResolution(
                ticket_id=ticket.ticket_id, action_id=resolve.id, resolved_by="UHELP",
                team=rng.choice(TEAMS), resolution_confirmed=answer, reopened=answer is False,
                satisfaction_score=rng.choice([None, 2, 4, 5]), created_at=at, updated_at=at))
        session.flush()
    return acts


def _late_changes(session: Session, rng: random.Random, acts: list[ActionHistory]) -> None:
    """What happens after the rollup ran: answers, stars, reopens, rollbacks, a
    person's resolution, a ticket given to another team, a new bot action."""
    for action in rng.sample(acts, k=min(len(acts), 12)):
        change = rng.randrange(6)
        if change == 0:
            action.rolled_back = True
            action.rolled_back_at = JOB
        elif change in (1, 2):
            resolution = session.scalars(select(TicketResolution).where(
                TicketResolution.ticket_id == action.ticket_id)).first()
            if resolution is not None:
                resolution.resolution_confirmed = change == 1
                resolution.reopened = change == 2
                resolution.satisfaction_score = rng.choice([1, 5])
        elif change == 3:
            session.add(PersonResolution(
                ticket_id=action.ticket_id, resolved_by="ULATE", team="Late",
                resolution_confirmed=rng.choice([True, False]),
                created_at=action.executed_at + timedelta(hours=rng.randint(1, 200)),
                updated_at=JOB))
        elif change == 4:
            ticket = session.get(Ticket, action.ticket_id)
            assert ticket is not None
            ticket.assigned_team = rng.choice(["Moved", None])
        else:
            session.add(ActionHistory(ticket_id=action.ticket_id, action_type=ActionType.ESCALATE,
                                      executed_at=action.executed_at + timedelta(hours=rng.randint(1, 48)),
                                      confidence_score=0.5))
    session.flush()


def _roll_all(session: Session, now: datetime = JOB) -> None:
    while rollup.roll_up(session, now=now):
        pass


def _assert_same(session: Session, now: datetime) -> None:
    with time_machine.travel(now, tick=False):
        for days in WINDOWS:
            assert analytics.resolution_stats(session, days=days) == full_resolution_stats(
                session, days=days, now=now), (days, now)


def _scenario(session: Session, seed: int, *, tickets: int, span_days: int, partial: bool) -> None:
    rng = random.Random(seed)
    acts = _history(session, rng, tickets=tickets, span_days=span_days)
    _roll_all(session)
    _assert_same(session, JOB)
    _late_changes(session, rng, acts)
    # Not rolled again yet: the changed hours are counted live.
    for now in READ_AT:
        _assert_same(session, now)
    if partial:  # the job ran again, but only in part
        rollup.roll_up(session, now=JOB + timedelta(hours=3), days_per_call=2)
    else:
        _roll_all(session, JOB + timedelta(hours=3))
    for now in READ_AT:
        _assert_same(session, now)


@hypothesis_settings(max_examples=3, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), tickets=st.integers(5, 40), partial=st.booleans())
def test_rollup_plus_live_is_the_full_count_on_postgresql(session, seed, tickets, partial):
    nested = session.begin_nested()
    try:
        _scenario(session, seed, tickets=tickets, span_days=45, partial=partial)
    finally:
        nested.rollback()


@hypothesis_settings(max_examples=3, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), tickets=st.integers(5, 30), partial=st.booleans())
def test_rollup_plus_live_is_the_full_count_on_sqlite(sqlite_sessions, seed, tickets, partial):
    with sqlite_sessions() as session:
        try:
            _scenario(session, seed, tickets=tickets, span_days=40, partial=partial)
        finally:
            session.rollback()


def test_a_year_of_history_with_the_job_never_run_or_run_once(session):
    rng = random.Random(7)
    _history(session, rng, tickets=30, span_days=400)
    for now in READ_AT[:2]:
        _assert_same(session, now)  # nothing rolled: everything live
    _roll_all(session)
    assert session.scalar(select(StatsDirty.id).limit(1)) is None
    for now in READ_AT:
        _assert_same(session, now)


def test_running_the_job_again_changes_nothing(session):
    _history(session, random.Random(3), tickets=25, span_days=20)
    _roll_all(session)

    def stored():
        return sorted(tuple(row) for row in session.execute(select(
            StatsRollup.bucket_start, StatsRollup.bucket_seconds, StatsRollup.family, StatsRollup.key_a,
            StatsRollup.key_b, StatsRollup.key_c, StatsRollup.n0, StatsRollup.n1, StatsRollup.n2,
            StatsRollup.x0)))

    before = stored()
    assert before
    assert rollup.roll_up(session, now=JOB) == 0
    assert stored() == before
    first_day = session.scalar(select(StatsRollupDay.day).order_by(StatsRollupDay.day).limit(1))
    first_act = session.scalar(select(ActionHistory.executed_at).order_by(ActionHistory.executed_at).limit(1))
    assert first_act is not None and first_day == rollup.floor_day(first_act)


def test_a_late_answer_is_stale_until_the_job_rolls_its_day_again(session):
    acts = _history(session, random.Random(11), tickets=20, span_days=10)
    _roll_all(session)
    resolved = next(a for a in acts if a.action_type == ActionType.AUTO_RESOLVE)
    resolution = session.scalars(select(TicketResolution).where(
        TicketResolution.action_id == resolved.id)).one()
    resolution.resolution_confirmed = not resolution.resolution_confirmed
    session.flush()
    fresh = rollup.freshness(session, JOB - timedelta(days=30))
    hour = rollup.floor_hour(resolved.executed_at)
    assert hour in fresh.stale and not fresh.fresh_hour(hour)
    _roll_all(session)
    fresh = rollup.freshness(session, JOB - timedelta(days=30))
    assert fresh.fresh_hour(hour) and not fresh.stale
    _assert_same(session, JOB)


def test_two_jobs_at_once_leave_the_same_rollup(racing_factory):
    with transaction(racing_factory) as session:
        acts = _history(session, random.Random(5), tickets=30, span_days=25)
        ids = [a.id for a in acts]
    errors: list[BaseException] = []

    def job() -> None:
        try:
            while True:
                with transaction(racing_factory) as session:
                    if not rollup.roll_up(session, now=JOB, days_per_call=4):
                        return
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    runners = [threading.Thread(target=job) for _ in range(2)]
    for runner in runners:
        runner.start()
    with transaction(racing_factory) as session:  # a late rollback while they run
        for action_id in ids[:3]:
            action = session.get(ActionHistory, action_id)
            assert action is not None
            action.rolled_back = True
    for runner in runners:
        runner.join()
    assert not errors
    with racing_factory() as session:
        for now in (JOB, JOB - timedelta(days=2, minutes=7)):
            _assert_same(session, now)
        session.rollback()


def test_too_many_changes_waiting_are_counted_live(session, monkeypatch):
    acts = _history(session, random.Random(17), tickets=25, span_days=12)
    _roll_all(session)
    _late_changes(session, random.Random(18), acts)
    monkeypatch.setattr(rollup, "READ_MARKS", 3)
    assert rollup.freshness(session, JOB - timedelta(days=30)).none_fresh
    for now in READ_AT[:2]:
        _assert_same(session, now)
