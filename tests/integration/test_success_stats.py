"""Success per action type, team and confidence bin, the 14-day trend and CSAT, against
hand-counted fixtures on PostgreSQL and SQLite, and against a plain recomputation."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.domain import actions
from bot.domain.success import (
    ConfidenceBin,
    Csat,
    Outcomes,
    success_stats,
)
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    ActionType,
    PersonResolution,
    Ticket,
    TicketResolution,
    make_engine,
    make_session_factory,
    transaction,
)
from tests.support.factories import make_plan, make_ticket
from tests.support.recount import outcome_in_python

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)
HOUR = timedelta(hours=1)
DELAY = timedelta(hours=24)


def _act(session, action_type=ActionType.AUTO_RESOLVE, *, team="Network", confidence=0.9,
         autonomous=True, at=NOW - HOUR, ticket=None, answer=None, reopened=False,
         rating=None):
    """One of the bot's actions; for an AUTO_RESOLVE, the requester's answer and stars."""
    ticket = ticket or make_ticket(session, created_at=at - HOUR)
    plan = make_plan(action_type, confidence=confidence, team=team, autonomous=autonomous)
    action = actions.execute(session, ticket, plan, now=at, followup_delay=DELAY)
    if action_type == ActionType.AUTO_RESOLVE:
        resolution = session.scalars(
            select(TicketResolution).where(TicketResolution.action_id == action.id)).one()
        resolution.resolution_confirmed = answer
        resolution.reopened = reopened
        resolution.satisfaction_score = rating
        session.flush()
    return action


def _person(session, action, *, at, answer, rating=None, team="Security"):
    """A person's resolution of the action's ticket, and the requester's verdict on it."""
    session.add(PersonResolution(
        ticket_id=action.ticket_id, resolved_by="UHELP", team=team, note="done",
        resolution_confirmed=answer, reopened=answer is False, satisfaction_score=rating,
        created_at=at, updated_at=at))
    session.flush()


def _roll_back(session, action):
    action.rolled_back = True
    action.rolled_back_at = NOW
    action.rolled_back_by = "UADMIN"
    session.flush()


def build(session):
    # Network: a Yes (slot 0 of the trend), a No (slot 10), a Yes an admin rolled back.
    _act(session, confidence=0.92, answer=True, rating=5, at=NOW - timedelta(days=13, hours=1))
    _act(session, confidence=0.95, answer=False, reopened=True, rating=2,
         at=NOW - timedelta(days=3, hours=1))
    _roll_back(session, _act(session, confidence=0.85, answer=True, rating=5))
    # Accounts: unanswered; Yes; No then Yes; and a clarification answered by the
    # AUTO_RESOLVE that followed it on the same ticket.
    _act(session, team="Accounts", confidence=0.81)
    _act(session, team="Accounts", confidence=0.88, answer=True, rating=4)
    _act(session, team="Accounts", confidence=1.0, answer=True, reopened=True)
    asked = _act(session, ActionType.REQUEST_CLARIFICATION, team="Accounts", confidence=0.3,
                 at=NOW - 3 * HOUR)
    _act(session, team="Accounts", confidence=0.9, answer=True, rating=3,
         ticket=session.get(Ticket, asked.ticket_id), at=NOW - 2 * HOUR)
    # Security: routed, then resolved by a person: Yes; No; and a person's Yes given
    # before the (human-triage) escalation, which does not answer it.
    escalated = _act(session, ActionType.ESCALATE, team="Security", confidence=0.4)
    _person(session, escalated, at=NOW - HOUR / 2, answer=True, rating=3)
    assigned = _act(session, ActionType.ASSIGN_TO_TEAM, team="Security", confidence=0.7)
    _person(session, assigned, at=NOW - HOUR / 2, answer=False, rating=1)
    triaged = _act(session, ActionType.ESCALATE, team="Security", confidence=None,
                   autonomous=False)
    _person(session, triaged, at=NOW - 2 * HOUR, answer=True, rating=5)
    # No team: a clarification nobody answered.
    _act(session, ActionType.REQUEST_CLARIFICATION, team="Network", confidence=0.35)
    # Older than the window: a No that must not count anywhere.
    _act(session, confidence=0.95, answer=False, reopened=True, rating=5,
         at=NOW - timedelta(days=40))


def check(stats):
    assert stats.since == SINCE
    assert stats.total == Outcomes("All", actions=12, confirmed=6, reopened=2, rolled_back=1,
                                   unanswered=3)
    assert stats.by_action_type == (
        Outcomes(ActionType.ASSIGN_TO_TEAM, 1, confirmed=0, reopened=1, rolled_back=0, unanswered=0),
        Outcomes(ActionType.AUTO_RESOLVE, 7, confirmed=4, reopened=1, rolled_back=1, unanswered=1),
        Outcomes(ActionType.ESCALATE, 2, confirmed=1, reopened=0, rolled_back=0, unanswered=1),
        Outcomes(ActionType.REQUEST_CLARIFICATION, 2, confirmed=1, reopened=0, rolled_back=0,
                 unanswered=1),
    )
    assert stats.by_team == (
        Outcomes("Accounts", 5, confirmed=4, reopened=0, rolled_back=0, unanswered=1),
        Outcomes("Network", 3, confirmed=1, reopened=1, rolled_back=1, unanswered=0),
        Outcomes("Security", 3, confirmed=1, reopened=1, rolled_back=0, unanswered=1),
        Outcomes("Unassigned", 1, confirmed=0, reopened=0, rolled_back=0, unanswered=1),
    )
    assert stats.by_team[0].success_rate == 1.0
    assert stats.by_team[3].success_rate is None
    assert stats.calibration == (
        ConfidenceBin(0.3, acts=2, answered=1, confirmed=1, stated=0.3),
        ConfidenceBin(0.4, acts=1, answered=1, confirmed=1, stated=0.4),
        ConfidenceBin(0.7, acts=1, answered=1, confirmed=0, stated=0.7),
        ConfidenceBin(0.8, acts=3, answered=1, confirmed=1, stated=0.88),
        ConfidenceBin(0.9, acts=4, answered=4, confirmed=3, stated=pytest.approx(0.9425, abs=1e-3)),
    )
    assert stats.calibration[-1].confirmed_share == 0.75
    assert len(stats.trend) == 14
    assert stats.trend[0].start == NOW - timedelta(days=14)
    assert [(d.confirmed, d.answered) for d in stats.trend] == (
        [(1, 1)] + [(0, 0)] * 9 + [(0, 1)] + [(0, 0)] * 2 + [(5, 6)])
    # Bot: 5, 2, 4 and 3 stars kept (the rolled-back 5 and the old one aside); people: 3, 1, 5.
    assert stats.csat == Csat(satisfied=2, ratings=4)
    assert stats.people_csat == Csat(satisfied=1, ratings=3)


def test_hand_counted_figures_on_postgresql(session):
    build(session)
    check(success_stats(session, since=SINCE, now=NOW))


def test_hand_counted_figures_on_sqlite(sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            build(session)
        with transaction(factory) as session:
            check(success_stats(session, since=SINCE, now=NOW))
    finally:
        engine.dispose()


def test_a_narrow_window_leaves_the_trend_whole(session):
    build(session)
    stats = success_stats(session, since=NOW - timedelta(days=1), now=NOW)
    assert stats.total.actions == 10
    assert [(d.confirmed, d.answered) for d in stats.trend][0] == (1, 1)


def _recount(session, since, now):
    """The same figures the slow way: every row loaded and classified in Python."""
    acts = session.scalars(select(ActionHistory).where(
        ActionHistory.action_type.in_(list(AGENT_ACTIONS)),
        ActionHistory.executed_at >= since)).all()
    outcome = outcome_in_python(session)

    counts: dict[tuple[str, str], int] = {}
    for a in acts:
        key = (str(a.action_type), outcome(a))
        counts[key] = counts.get(key, 0) + 1
    bins: dict[int, list[str]] = {}
    for a in acts:
        if a.autonomous and a.confidence_score is not None:
            bins.setdefault(min(int(round(a.confidence_score * 100)) // 10, 9), []).append(outcome(a))
    return counts, bins


def test_figures_match_a_recount_of_random_history(session):
    rng = random.Random(12)
    for _ in range(120):
        kind = rng.choice(AGENT_ACTIONS)
        at = NOW - timedelta(hours=rng.randint(1, 24 * 20))
        confidence = rng.choice([None, round(rng.random(), 2)])
        action = _act(session, kind, team=rng.choice(["Network", "Accounts"]), confidence=confidence,
                      autonomous=confidence is not None, at=at,
                      answer=rng.choice([None, True, False]), reopened=rng.random() < 0.3)
        if kind != ActionType.AUTO_RESOLVE and rng.random() < 0.6:
            _person(session, action, at=at + timedelta(hours=rng.randint(-3, 5)),
                    answer=rng.choice([None, True, False]))
        if rng.random() < 0.1:
            _roll_back(session, action)
    since = NOW - timedelta(days=10)
    stats = success_stats(session, since=since, now=NOW)
    counts, bins = _recount(session, since, NOW)
    for row in stats.by_action_type:
        for name in ("confirmed", "reopened", "rolled_back", "unanswered"):
            assert getattr(row, name) == counts.get((row.name, name), 0), (row, name)
    assert sum(r.actions for r in stats.by_action_type) == sum(counts.values())
    assert {round(b.low * 10): (b.acts, b.confirmed, b.answered) for b in stats.calibration} == {
        k: (len(v), v.count("confirmed"), v.count("confirmed") + v.count("reopened"))
        for k, v in bins.items()}
