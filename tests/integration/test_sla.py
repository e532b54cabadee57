"""SLA clocks with moved time (time-machine): the `check_sla` job warns the team's
channel at 80% of a target and tells it of a breach at 100%, once each; the clock stops
while the ticket waits on its requester and outside BUSINESS_HOURS (but not for a
critical ticket); the first response stops the response clock; /resolution-stats shows
met and breached per team and priority with the median times.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import views
from bot.core.settings import load_settings
from bot.delivery.slack_client import make_web_client
from bot.domain import analytics, sla, sla_rollup
from bot.sandbox.standin import SlackStandIn
from bot.workflows import periodic
from bot.workflows.runtime import Runtime
from models import ActionHistory, ActionType, Ticket, TicketSla, make_engine, transaction
from tests.support.factories import make_action, make_ticket

NET = "CNETWORK"
# Monday 30 November 2026, 10:00 in Berlin.
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture()
def runtime(pg_url, fake, committing_factory, redis_url, namespace):
    settings = load_settings(
        database_url=pg_url,
        slack_api_url=fake.base_url,
        slack_bot_token=fake.token,
        redis_url=redis_url,
        team_channels=f"Network={NET}",
        sla_targets="high=30m/2h,normal=1h/4h",
    )
    rt = Runtime.from_settings(settings, namespace=namespace)
    yield rt
    rt.engine.dispose()


def _run(runtime, at: datetime) -> int:
    with time_machine.travel(at, tick=False):
        return periodic.check_sla(runtime, make_web_client(runtime.settings, timeout=2))


def _routed(runtime, *, at: datetime = T0, severity: str = "medium", category: str = "vpn") -> int:
    """A ticket opened at `at` and routed to Network a minute later: nobody answered yet."""
    with transaction(runtime.sessions) as session:
        ticket = make_ticket(session, created_at=at, assigned_team="Network")
        ticket.agent_response = {"analysis": {"severity": severity, "category": category}}
        make_action(
            session, ticket=ticket, action_type=ActionType.ASSIGN_TO_TEAM, now=at + timedelta(minutes=1)
        )
        return ticket.ticket_id


def _notices(fake) -> list[str]:
    return [m["text"] for m in fake.messages(NET)]


def test_a_ticket_warns_and_breaches_once_each_per_target(runtime, fake):
    ticket_id = _routed(runtime)
    assert _run(runtime, T0 + timedelta(minutes=47)) == 0  # 47 of 60 minutes: under 80%
    assert _run(runtime, T0 + timedelta(minutes=49)) == 1
    assert _notices(fake) == [
        f"Ticket #{ticket_id} has used 80% of its first response target (49m of 1h, normal priority)."
    ]
    assert _run(runtime, T0 + timedelta(minutes=55)) == 0  # warned once
    assert _run(runtime, T0 + timedelta(minutes=61)) == 1
    assert _run(runtime, T0 + timedelta(minutes=90)) == 0  # breached once
    assert (
        _notices(fake)[1]
        == f"Ticket #{ticket_id} missed its first response target (1h 1m of 1h, normal priority)."
    )
    # The resolution target (4h) has its own warning and breach.
    assert _run(runtime, T0 + timedelta(hours=3, minutes=13)) == 1
    assert _run(runtime, T0 + timedelta(hours=4)) == 1
    assert _run(runtime, T0 + timedelta(hours=5)) == 0
    assert [text.split(" (")[0] for text in _notices(fake)] == [
        f"Ticket #{ticket_id} has used 80% of its first response target",
        f"Ticket #{ticket_id} missed its first response target",
        f"Ticket #{ticket_id} has used 80% of its resolution target",
        f"Ticket #{ticket_id} missed its resolution target",
    ]
    posted = fake.messages(NET)[-1]
    assert "business hours" not in str(posted["blocks"]) and "around the clock" in str(posted["blocks"])


def test_the_clock_stops_while_the_ticket_waits_on_the_requester(runtime, fake):
    with transaction(runtime.sessions) as session:
        ticket = make_ticket(session, created_at=T0, assigned_team="Network")
        # The bot asks for detail after 10 minutes; the requester answers two hours
        # later and the ticket goes to the team.
        make_action(
            session,
            ticket=ticket,
            action_type=ActionType.REQUEST_CLARIFICATION,
            now=T0 + timedelta(minutes=10),
        )
        ticket_id = ticket.ticket_id
    assert _run(runtime, T0 + timedelta(hours=2)) == 0  # 10 minutes on the clock, not 2 hours
    with transaction(runtime.sessions) as session:
        row = session.get(TicketSla, ticket_id)
        assert row.elapsed_s == 600 and row.response_s is None and row.priority == "normal"
        ticket = session.get(Ticket, ticket_id)
        make_action(
            session, ticket=ticket, action_type=ActionType.ASSIGN_TO_TEAM, now=T0 + timedelta(hours=2)
        )
    assert _run(runtime, T0 + timedelta(hours=2, minutes=37)) == 0  # 47 minutes
    assert _run(runtime, T0 + timedelta(hours=2, minutes=39)) == 1  # 49 minutes: 80%
    assert _notices(fake) == [
        f"Ticket #{ticket_id} has used 80% of its first response target (49m of 1h, normal priority)."
    ]


def test_business_hours_stop_the_clock_but_not_for_a_critical_ticket(runtime, fake):
    runtime.settings = runtime.settings.model_copy(
        update={
            "business_hours": load_settings(
                database_url="sqlite://", business_hours="Mon-Fri 09:00-18:00 Europe/Berlin"
            ).business_hours
        }
    )
    friday_evening = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # 17:30 in Berlin
    normal = _routed(runtime, at=friday_evening)
    critical = _routed(runtime, at=friday_evening, severity="critical")
    # Saturday noon: the normal ticket has had 30 business minutes; the critical one
    # has run around the clock and missed both its targets (15m/4h by default).
    assert _run(runtime, datetime(2026, 11, 28, 11, 0, tzinfo=UTC)) == 2
    assert [text.split(" (")[0] for text in _notices(fake)] == [
        f"Ticket #{critical} missed its first response target",
        f"Ticket #{critical} missed its resolution target",
    ]
    # Monday 09:19 in Berlin: 30 + 19 = 49 business minutes for the normal one.
    assert _run(runtime, datetime(2026, 11, 30, 8, 19, tzinfo=UTC)) == 1
    assert _notices(fake)[-1] == (
        f"Ticket #{normal} has used 80% of its first response target (49m of 1h, normal priority)."
    )
    assert "business hours" in str(fake.messages(NET)[-1]["blocks"])


def test_the_first_response_stops_its_clock_and_a_late_stop_is_counted_not_announced(runtime, fake):
    with transaction(runtime.sessions) as session:
        # The bot answers on its own within a minute: met, resolved, nothing to say.
        answered = make_ticket(session, created_at=T0, assigned_team="Network")
        make_action(
            session, ticket=answered, action_type=ActionType.AUTO_RESOLVE, now=T0 + timedelta(minutes=1)
        )
        answered_id = answered.ticket_id
    taken_id = _routed(runtime, severity="high")  # high: 30m / 2h
    with transaction(runtime.sessions) as session:
        taken = session.get(Ticket, taken_id)
        # A person takes it after 40 minutes, before any job ran: late, but answered.
        make_action(session, ticket=taken, action_type=ActionType.ASSIGN_TO_TEAM, now=T0)  # keeps the team
        # A TAKE as bot.domain.teamwork writes it.
        session.add(
            ActionHistory(
                ticket_id=taken_id,
                action_type=ActionType.TAKE,
                action_params={},
                executed_at=T0 + timedelta(minutes=40),
                executed_by="UAGENT",
                autonomous=False,
                agent_reasoning="",
                rollback_possible=True,
                before_state={"status": "in_progress"},
                after_state={"status": "in_progress"},
            )
        )
    assert _run(runtime, T0 + timedelta(minutes=45)) == 0  # answered late: counted, not announced
    with transaction(runtime.sessions) as session:
        done = session.get(TicketSla, answered_id)
        assert (done.response_s, done.resolution_s, done.settled) == (60, 60, True)
        late = session.get(TicketSla, taken_id)
        assert (late.priority, late.response_s, late.settled) == ("high", 40 * 60, False)
        assert late.response_breached_at is not None
        stats = sla.sla_stats(session, since=T0 - timedelta(days=1))
    [high, normal] = stats
    assert (high.team, high.priority, high.tickets, high.response_met, high.response_breached) == (
        "Network",
        "high",
        1,
        0,
        1,
    )
    assert (normal.priority, normal.response_met, normal.resolution_met) == ("normal", 1, 1)
    assert normal.median_response_s == approx(60)
    assert _notices(fake) == []
    text = str(views.stats_blocks(_empty_stats(), sla=stats))
    assert "Service levels" in text and "Network" in text and "0/1" in text


def _empty_stats():
    return analytics.ResolutionStats(
        days=30,
        since=T0,
        resolutions=0,
        confirmed=0,
        failed=0,
        pending=0,
        reopened=0,
        success_rate=None,
        average_rating=None,
        ratings=0,
        withdrawn=0,
        by_action_type=(),
        by_team=(),
    )


def approx(seconds: float):
    return pytest.approx(seconds, rel=sla_rollup.PRECISION)


def test_medians_per_team_and_priority_in_sql(runtime):
    with transaction(runtime.sessions) as session:
        for minutes, team in (
            (10, "Network"),
            (20, "Network"),
            (50, "Network"),
            (70, "Network"),
            (5, "Access"),
        ):
            ticket = make_ticket(session, created_at=T0, assigned_team=team)
            make_action(
                session,
                ticket=ticket,
                action_type=ActionType.AUTO_RESOLVE,
                now=T0 + timedelta(minutes=minutes),
            )
    assert _run(runtime, T0 + timedelta(hours=3)) == 0
    with transaction(runtime.sessions) as session:
        rows = {row.team: row for row in sla.sla_stats(session, since=T0 - timedelta(hours=1))}
    # Medians from histograms (bot.domain.sla_rollup): within PRECISION of the exact ones.
    assert rows["Network"].median_response_s == approx(35 * 60)  # (20 + 50) / 2
    assert rows["Network"].response_met == 3 and rows["Network"].response_breached == 1
    assert rows["Access"].median_resolution_s == approx(5 * 60)


def test_two_job_runs_at_once_notify_once(runtime, fake):
    ticket_id = _routed(runtime)
    results: list[int] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        client = make_web_client(runtime.settings, timeout=2)
        barrier.wait()
        results.append(periodic.check_sla(runtime, client))

    with time_machine.travel(T0 + timedelta(minutes=50), tick=False):
        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(results) == [0, 0, 0, 1]
    assert len(_notices(fake)) == 1
    with transaction(runtime.sessions) as session:
        assert len(session.scalars(select(TicketSla).where(TicketSla.ticket_id == ticket_id)).all()) == 1


def test_the_job_measures_a_ticket_again_only_when_a_threshold_or_a_change_is_due(runtime, fake):
    ticket_id = _routed(runtime)
    assert _run(runtime, T0 + timedelta(minutes=49)) == 1
    with transaction(runtime.sessions) as session:
        # Next: the breach, an hour after intake at the earliest.
        assert session.get(TicketSla, ticket_id).next_check_at == T0 + timedelta(hours=1)
        assert sla.due_tickets(session, now=T0 + timedelta(minutes=59)) == []
        assert sla.due_tickets(session, now=T0 + timedelta(hours=1)) == [ticket_id]
        # A person takes it: measured at the next run, the response clock stopped.
        session.add(
            ActionHistory(
                ticket_id=ticket_id,
                action_type=ActionType.TAKE,
                action_params={},
                executed_at=T0 + timedelta(minutes=52),
                executed_by="UAGENT",
                autonomous=False,
                agent_reasoning="",
                rollback_possible=True,
                before_state={"status": "in_progress"},
                after_state={"status": "in_progress"},
            )
        )
        session.get(Ticket, ticket_id).updated_at = T0 + timedelta(minutes=52)
        assert sla.due_tickets(session, now=T0 + timedelta(minutes=53)) == [ticket_id]
    assert _run(runtime, T0 + timedelta(minutes=53)) == 0
    with transaction(runtime.sessions) as session:
        row = session.get(TicketSla, ticket_id)
        assert row.response_s == 52 * 60 and row.response_breached_at is None
        # Next: the resolution warning, 80% of 4 hours after intake.
        assert row.next_check_at == T0 + timedelta(minutes=53) + timedelta(minutes=192 - 53)
    assert _run(runtime, T0 + timedelta(hours=2)) == 0
    assert len(_notices(fake)) == 1


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_stats_count_met_and_breached_and_take_medians_on_both_backends(backend, session, sqlite_url):
    engine = make_engine(sqlite_url) if backend == "sqlite" else None
    db = Session(engine) if engine is not None else session
    try:
        # Response times 10, 20, 50, 70 minutes against 1 hour: 3 met, 1 breached,
        # median 35 minutes; one still running past its resolution target.
        for n, minutes in enumerate((10, 20, 50, 70)):
            ticket = make_ticket(db, created_at=T0, assigned_team="Network")
            db.add(
                TicketSla(
                    ticket_id=ticket.ticket_id,
                    priority="high",
                    team="Network",
                    started_at=T0,
                    response_target_s=3600,
                    resolution_target_s=7200,
                    response_s=minutes * 60,
                    resolution_s=None if n == 3 else 3 * 3600,
                    elapsed_s=0,
                    settled=n != 3,
                    resolution_breached_at=T0 if n == 3 else None,
                    updated_at=T0,
                )
            )
        db.flush()
        [row] = sla.sla_stats(db, since=T0 - timedelta(days=1))
        assert (row.tickets, row.response_met, row.response_breached) == (4, 3, 1)
        assert (row.resolution_met, row.resolution_breached) == (0, 4)
        assert row.median_response_s == approx(35 * 60) and row.median_resolution_s == approx(3 * 3600)
        assert sla.sla_stats(db, since=T0 + timedelta(days=1)) == ()
    finally:
        if engine is not None:
            db.close()
            engine.dispose()


def test_a_resolved_ticket_stops_the_clock_until_the_requester_reopens_it(runtime, fake):
    def action(ticket_id: int, action_type: ActionType, at: datetime, status: str) -> None:
        session.add(
            ActionHistory(
                ticket_id=ticket_id,
                action_type=action_type,
                action_params={},
                executed_at=at,
                executed_by="UAGENT",
                autonomous=False,
                agent_reasoning="",
                rollback_possible=True,
                before_state={},
                after_state={"status": status},
            )
        )

    ticket_id = _routed(runtime)
    with transaction(runtime.sessions) as session:
        # A person resolves it after 30 minutes; the requester reopens it at 5 h; the
        # person resolves it again 20 minutes later: 50 minutes of work in all.
        action(ticket_id, ActionType.RESOLVE, T0 + timedelta(minutes=30), "resolved")
        action(ticket_id, ActionType.REOPEN, T0 + timedelta(hours=5), "open")
        action(ticket_id, ActionType.RESOLVE, T0 + timedelta(hours=5, minutes=20), "resolved")
        ticket = session.get(Ticket, ticket_id)
        ticket.status, ticket.resolved_at = "resolved", T0 + timedelta(hours=5, minutes=20)
        ticket.updated_at = ticket.resolved_at
    assert _run(runtime, T0 + timedelta(hours=6)) == 0
    with transaction(runtime.sessions) as session:
        row = session.get(TicketSla, ticket_id)
        assert (row.response_s, row.resolution_s, row.settled) == (30 * 60, 50 * 60, True)
        assert row.resolution_breached_at is None and row.resolution_warned_at is None
    assert _notices(fake) == []


def test_the_backlog_met_for_the_first_time_is_flagged_without_a_flood_of_notices(runtime, fake):
    old = _routed(runtime, at=T0 - timedelta(days=10))
    recent = _routed(runtime, at=T0 - timedelta(hours=5))
    assert _run(runtime, T0) == 2  # the recent one's two breaches; nothing about the old one
    assert {text.split(" missed")[0] for text in _notices(fake)} == {f"Ticket #{recent}"}
    with transaction(runtime.sessions) as session:
        row = session.get(TicketSla, old)
        assert row.response_breached_at is not None and row.resolution_breached_at is not None
    assert _run(runtime, T0 + timedelta(hours=1)) == 0
