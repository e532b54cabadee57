"""The figures a helpdesk lead reads in /resolution-stats, computed in the database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select

from bot.core import clock
from bot.core.errors import InvalidInput
from bot.domain import actions, analytics
from bot.domain.analytics import ActionTypeStats, ResolutionStats, TeamStats, resolution_stats
from models import (
    ActionHistory,
    ActionType,
    Ticket,
    TicketResolution,
    TicketStatus,
    make_engine,
    make_session_factory,
    transaction,
)
from tests.support.factories import make_action, make_plan, make_ticket

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DELAY = timedelta(hours=24)


def _resolve(session, *, team, confirmed=None, rating=None, reopened=False,
             confidence=0.9, now=NOW, ticket=None):
    """An AUTO_RESOLVE for `team` and the requester's answer, set on the resolution row."""
    kwargs = {"ticket": ticket} if ticket else {"assigned_team": team, "created_at": now}
    action = make_action(session, confidence=confidence, now=now, **kwargs)
    resolution = session.scalars(
        select(TicketResolution).where(TicketResolution.action_id == action.id)
    ).one()
    resolution.resolution_confirmed = confirmed
    resolution.satisfaction_score = rating
    resolution.reopened = reopened
    session.flush()
    return action


def _act(session, action_type, *, team=None, confidence, autonomous=True, now=NOW,
         ticket=None):
    plan = make_plan(action_type, confidence=confidence, team=team or "Network",
                     autonomous=autonomous)
    ticket = ticket or make_ticket(session, assigned_team=team, created_at=now)
    return actions.execute(session, ticket, plan, now=now, followup_delay=DELAY)


def _withdraw(session, action, *, now=NOW):
    """An admin's rollback: the action is marked, and a ROLLBACK record is written."""
    action.rolled_back = True
    action.rolled_back_at = now
    action.rolled_back_by = "UADMIN"
    session.add(ActionHistory(ticket_id=action.ticket_id, action_type=ActionType.ROLLBACK,
                              executed_at=now, executed_by="UADMIN", autonomous=False,
                              rollback_of=action.id, action_params={}))
    session.flush()


def build_scenario(session):
    """Thirty days of helpdesk work, plus older rows and people's records to ignore."""
    # Network: 2 yes, 1 no (reopened), 1 pending; one more resolution withdrawn.
    _resolve(session, team="Network", confirmed=True, rating=5, confidence=0.9)
    _resolve(session, team="Network", confirmed=True, rating=4, confidence=0.85)
    failed = _resolve(session, team="Network", confirmed=False, rating=1, reopened=True,
                      confidence=0.95, now=NOW - timedelta(days=29))
    session.add(ActionHistory(ticket_id=failed.ticket_id, action_type=ActionType.REOPEN,
                              executed_at=NOW, executed_by="UREQ", action_params={}))
    _resolve(session, team="Network", confidence=0.8)
    # Said yes with one star, then an admin withdrew it: none of that may count.
    _withdraw(session, _resolve(session, team="Network", confirmed=True, rating=1,
                                confidence=0.81))
    _act(session, ActionType.ASSIGN_TO_TEAM, team="Network", confidence=0.7)

    # Accounts: 1 yes (unrated); 1 pending on a ticket that was asked for detail first.
    _resolve(session, team="Accounts", confirmed=True, confidence=0.88)
    clarified = _act(session, ActionType.REQUEST_CLARIFICATION, team="Accounts",
                     confidence=0.45, now=NOW - timedelta(hours=2))
    _resolve(session, team="Accounts", confidence=0.92,
             ticket=session.get(Ticket, clarified.ticket_id))

    # Security: one autonomous escalation, one human-triage routing without confidence.
    _act(session, ActionType.ESCALATE, team="Security", confidence=0.42)
    _act(session, ActionType.ESCALATE, team="Security", confidence=None, autonomous=False)
    # No team at all.
    _act(session, ActionType.REQUEST_CLARIFICATION, confidence=0.35)

    # Older than 30 days: a failure and an escalation that must not count.
    _resolve(session, team="Network", confirmed=False, rating=1, reopened=True,
             confidence=0.2, now=NOW - timedelta(days=31))
    _act(session, ActionType.ESCALATE, team="Security", confidence=0.1,
         now=NOW - timedelta(days=40))


def assert_scenario(stats):
    assert stats.days == 30
    assert stats.since == NOW - timedelta(days=30)
    assert (stats.resolutions, stats.confirmed, stats.failed, stats.pending) == (6, 3, 1, 2)
    assert stats.success_rate == 0.75
    assert stats.reopened == 1
    assert (stats.ratings, stats.average_rating) == (3, 3.33)
    assert stats.withdrawn == 1
    assert stats.by_action_type == (
        # (0.9 + 0.85 + 0.95 + 0.8 + 0.81 + 0.88 + 0.92) / 7, the withdrawn one included.
        ActionTypeStats(ActionType.ASSIGN_TO_TEAM, actions=1, autonomous=1,
                        average_confidence=0.7, rolled_back=0),
        ActionTypeStats(ActionType.AUTO_RESOLVE, actions=7, autonomous=7,
                        average_confidence=0.873, rolled_back=1),
        ActionTypeStats(ActionType.ESCALATE, actions=2, autonomous=1,
                        average_confidence=0.42, rolled_back=0),
        ActionTypeStats(ActionType.REQUEST_CLARIFICATION, actions=2, autonomous=2,
                        average_confidence=0.4, rolled_back=0),
    )
    assert stats.by_team == (
        TeamStats("Accounts", tickets=2, resolutions=2, confirmed=1, failed=0,
                  success_rate=1.0, average_rating=None),
        TeamStats("Network", tickets=6, resolutions=4, confirmed=2, failed=1,
                  success_rate=pytest.approx(2 / 3), average_rating=3.33),
        TeamStats("Security", tickets=2, resolutions=0, confirmed=0, failed=0,
                  success_rate=None, average_rating=None),
        TeamStats("Unassigned", tickets=1, resolutions=0, confirmed=0, failed=0,
                  success_rate=None, average_rating=None),
    )


def test_stats_for_the_last_thirty_days(session):
    build_scenario(session)
    assert_scenario(resolution_stats(session, days=30, now=NOW))


def test_the_same_sql_on_sqlite(sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            build_scenario(session)
        with transaction(factory) as session:
            assert_scenario(resolution_stats(session, days=30, now=NOW))
    finally:
        engine.dispose()


def test_a_wider_window_takes_in_older_rows(session):
    build_scenario(session)
    stats = resolution_stats(session, days=60, now=NOW)
    assert (stats.resolutions, stats.confirmed, stats.failed, stats.reopened) == (7, 3, 2, 2)
    assert stats.success_rate == 0.6
    assert (stats.ratings, stats.average_rating) == (4, 2.75)
    escalate = next(s for s in stats.by_action_type if s.action_type == ActionType.ESCALATE)
    assert (escalate.actions, escalate.average_confidence) == (3, 0.26)


def test_a_narrow_window_starts_exactly_days_ago(session):
    _resolve(session, team="Network", confirmed=True, now=NOW - timedelta(days=7))
    _resolve(session, team="Network", confirmed=False,
             now=NOW - timedelta(days=7, seconds=1))
    stats = resolution_stats(session, days=7, now=NOW)
    assert (stats.resolutions, stats.confirmed, stats.failed) == (1, 1, 0)
    assert stats.by_action_type[0].actions == 1
    assert stats.by_team[0].tickets == 1


def test_a_rolled_back_resolution_leaves_only_the_withdrawn_count(session):
    _withdraw(session, _resolve(session, team="Network", confirmed=False, rating=1,
                                reopened=True))
    stats = resolution_stats(session, now=NOW)
    assert (stats.resolutions, stats.failed, stats.reopened, stats.ratings) == (0, 0, 0, 0)
    assert (stats.success_rate, stats.average_rating, stats.withdrawn) == (None, None, 1)
    assert stats.by_action_type == (ActionTypeStats(ActionType.AUTO_RESOLVE, 1, 1, 0.9, 1),)
    assert stats.by_team == (TeamStats("Network", 1, 0, 0, 0, None, None),)


def test_a_resolution_whose_action_row_is_gone_still_counts(session):
    action = _resolve(session, team="Network", confirmed=True, rating=4)
    resolution = session.scalars(select(TicketResolution)).one()
    resolution.action_id = None  # what ON DELETE SET NULL leaves behind
    session.flush()
    session.delete(action)
    session.flush()
    stats = resolution_stats(session, now=NOW)
    assert (stats.resolutions, stats.confirmed, stats.withdrawn) == (1, 1, 0)
    assert stats.by_action_type == ()
    assert stats.by_team == (TeamStats("Network", 0, 1, 1, 0, 1.0, 4.0),)


def test_an_empty_database_gives_zeros_and_no_rates(session):
    stats = resolution_stats(session, days=7, now=NOW)
    assert dataclasses.replace(stats, success=None) == ResolutionStats(
        days=7, since=NOW - timedelta(days=7), resolutions=0, confirmed=0, failed=0,
        pending=0, reopened=0, success_rate=None, average_rating=None, ratings=0,
        withdrawn=0, by_action_type=(), by_team=(),
    )
    assert stats.success is not None
    assert (stats.success.total.actions, stats.success.total.success_rate) == (0, None)
    assert stats.success.by_action_type == stats.success.calibration == ()
    assert [day.answered for day in stats.success.trend] == [0] * 14
    assert stats.success.csat.share is None


def test_now_defaults_to_the_bot_clock(session, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    _resolve(session, team="Network", confirmed=True, now=NOW - timedelta(days=6))
    stats = resolution_stats(session, days=7)
    assert stats.since == NOW - timedelta(days=7)
    assert stats.confirmed == 1


@pytest.mark.parametrize("days", [0, 366, -1, True, "7", 2.5, None])
def test_days_must_be_a_whole_number_from_1_to_365(session, days):
    with pytest.raises(InvalidInput, match="from 1 to 365"):
        resolution_stats(session, days=days, now=NOW)


def test_bounds_of_days_are_accepted(session):
    assert resolution_stats(session, days=1, now=NOW).days == 1
    assert resolution_stats(session, days=365, now=NOW).days == 365


def test_a_naive_now_is_refused(session):
    with pytest.raises(ValueError, match="tz-aware"):
        resolution_stats(session, now=NOW.replace(tzinfo=None))


def test_two_thousand_resolutions_take_a_handful_of_queries(session):
    teams = ("Network", "Accounts", "Security", None)
    ticket_ids = session.scalars(
        insert(Ticket).returning(Ticket.ticket_id, sort_by_parameter_order=True),
        [{"user_id": "UREQ", "issue_type": "vpn", "description": "vpn", "status": TicketStatus.RESOLVED,
          "tags": [], "assigned_team": teams[n % 4], "created_at": NOW, "updated_at": NOW}
         for n in range(2000)],
    ).all()
    action_ids = [uuid.uuid4() for _ in ticket_ids]
    session.execute(insert(ActionHistory), [
        {"id": action_id, "ticket_id": ticket_id, "action_type": ActionType.AUTO_RESOLVE,
         "action_params": {}, "executed_at": NOW, "autonomous": True,
         "confidence_score": 0.9, "rolled_back": n % 100 == 0}
        for n, (ticket_id, action_id) in enumerate(zip(ticket_ids, action_ids, strict=True))
    ])
    # Answers cycle yes, yes, yes, no, none; ratings cycle 1..5.
    session.execute(insert(TicketResolution), [
        {"ticket_id": ticket_id, "action_id": action_id, "autonomous_action": ActionType.AUTO_RESOLVE,
         "resolution_confirmed": (True, True, True, False, None)[n % 5],
         "satisfaction_score": n % 5 + 1, "created_at": NOW, "updated_at": NOW}
        for n, (ticket_id, action_id) in enumerate(zip(ticket_ids, action_ids, strict=True))
    ])
    session.flush()

    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        stats = analytics.resolution_stats(session, now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    # Nothing rolled up yet, so all live (bot.domain.rollup): two to learn what is
    # rolled and fresh, one per family of figures (five), one for the trend, one for NPS
    # (nps_answers, live); and two to turn PostgreSQL's parallel workers off and on again.
    assert len(statements) <= 11, statements
    # n % 100 == 0 withdraws 20 rows, all of them answered "yes" with 1 star.
    assert (stats.resolutions, stats.withdrawn) == (1980, 20)
    assert (stats.confirmed, stats.failed, stats.pending) == (1180, 400, 400)
    assert stats.ratings == 1980
    assert stats.by_action_type == (ActionTypeStats(ActionType.AUTO_RESOLVE, 2000, 2000, 0.9, 20),)
    assert [(t.team, t.tickets) for t in stats.by_team] == [
        ("Accounts", 500), ("Network", 500), ("Security", 500), ("Unassigned", 500)]
    total = stats.success.total
    assert (total.confirmed, total.reopened, total.rolled_back, total.unanswered) == (
        1180, 400, 20, 400)
    # Ratings 4 and 5 fall on n % 5 in (3, 4): none of them withdrawn (n % 100 == 0).
    assert (stats.success.csat.satisfied, stats.success.csat.ratings) == (800, 1980)
