"""THRESHOLD_EXPERIMENT against the database: an experiment starts and ends as the
setting says (and stays ended after an admin's stop), each decision uses and records
its ticket's arm, and the per-arm figures match a hand-counted fixture and a plain
recomputation, on PostgreSQL and SQLite."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core import clock
from bot.core.settings import load_settings
from bot.domain import actions, audit, experiments
from bot.domain.experiment_stats import ArmFigures, arm_figures, results
from bot.domain.success import Csat
from bot.platform import migrations
from bot.workflows.autonomy import reconcile_experiment
from bot.workflows.decision import decide_ticket
from bot.workflows.runtime import Runtime
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    ActionType,
    AuditEvent,
    ExperimentStop,
    PersonResolution,
    ThresholdExperiment,
    Ticket,
    TicketResolution,
    make_engine,
    make_session_factory,
    transaction,
)
from tests.support.factories import make_plan, make_ticket
from tests.support.recount import outcome_in_python
from tests.support.scripted_agent import ScriptedAgent, vpn_answer

STARTED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = STARTED + timedelta(days=5)
HOUR = timedelta(hours=1)
DELAY = timedelta(hours=24)


def _settings(arms: str = "0.75,0.85"):
    return load_settings(database_url="sqlite://", threshold_experiment=arms)


def _events(session, event_type):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                                .order_by(AuditEvent.id)))


# --- Starting and stopping ---------------------------------------------------------


def test_the_setting_starts_one_experiment_and_unsetting_ends_it(session):
    started = experiments.reconcile(session, _settings(), now=STARTED)
    assert started is not None and started.arms == (0.75, 0.85) and started.running
    assert experiments.reconcile(session, _settings(), now=NOW) == started  # nothing new
    [event] = _events(session, audit.EXPERIMENT_STARTED)
    assert event.detail == {"experiment": started.id, "arms": [0.75, 0.85]}

    assert experiments.reconcile(session, _settings(""), now=NOW) is None
    ended = experiments.latest(session)
    assert (ended.id, ended.stopped_at, ended.stop_cause, ended.stopped_by) == (
        started.id, NOW, ExperimentStop.UNSET, None)
    [stopped] = _events(session, audit.EXPERIMENT_STOPPED)
    assert stopped.detail["cause"] == "unset" and stopped.actor_id is None
    # Set again: a new experiment (the ended one was not an admin's stop).
    again = experiments.reconcile(session, _settings(), now=NOW + HOUR)
    assert again is not None and again.id != started.id


def test_other_arms_replace_the_running_experiment(session):
    first = experiments.reconcile(session, _settings(), now=STARTED)
    second = experiments.reconcile(session, _settings("0.7,0.9"), now=NOW)
    assert second.arms == (0.7, 0.9) and second.id != first.id
    old = session.get(ThresholdExperiment, first.id)
    assert (old.stop_cause, old.stop_reason) == (
        ExperimentStop.CHANGED, "THRESHOLD_EXPERIMENT is now 0.7,0.9")
    running = select(ThresholdExperiment).where(ThresholdExperiment.running.is_(True))
    assert session.scalars(running).all() == [session.get(ThresholdExperiment, second.id)]


def test_an_admins_stop_is_not_undone_by_the_same_setting(session):
    running = experiments.reconcile(session, _settings(), now=STARTED)
    stopped = experiments.stop(session, actor_id="UADMIN", reason="enough", now=NOW)
    assert (stopped.id, stopped.stopped_by, stopped.stop_cause, stopped.stop_reason) == (
        running.id, "UADMIN", ExperimentStop.ADMIN, "enough")
    assert experiments.stop(session, actor_id="UADMIN", now=NOW) is None  # nothing runs
    assert experiments.reconcile(session, _settings(), now=NOW + HOUR) is None
    assert experiments.running(session) is None
    # Other arms are another experiment.
    assert experiments.reconcile(session, _settings("0.8,0.9"), now=NOW + HOUR).arms == (0.8, 0.9)


# --- Decisions ----------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        request.getfixturevalue("committing_factory")  # empties the tables afterwards
        return request.getfixturevalue("pg_url")
    url = f"sqlite:///{tmp_path / 'experiment.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture()
def make_runtime(database_url, settings, namespace):
    made = []

    def build(**overrides) -> Runtime:
        runtime = Runtime.from_settings(load_settings(database_url=database_url, **overrides),
                                        namespace=namespace)
        made.append(runtime)
        # Confident enough for 0.75, not for 0.85 (and above MEDIUM_CONFIDENCE_THRESHOLD).
        return dataclasses.replace(runtime, agent=ScriptedAgent(vpn_answer(confidence=0.8)))

    yield build
    for runtime in made:
        runtime.engine.dispose()


def _tickets(runtime, count) -> list[int]:
    with transaction(runtime.sessions) as session:
        return [make_ticket(session, created_at=clock.now() - HOUR).ticket_id for _ in range(count)]


def _decide(runtime, ticket_id) -> ActionHistory:
    outcome = decide_ticket(runtime.sessions, ticket_id, agent=runtime.agent, budget=runtime.budget,
                            settings=runtime.settings).outcome
    return outcome.action


def test_each_decision_uses_and_records_its_tickets_arm(make_runtime):
    runtime = make_runtime(threshold_experiment="0.75,0.85")
    reconcile_experiment(runtime)  # as `serve` does at startup
    with transaction(runtime.sessions) as session:
        experiment = experiments.running(session)
    ids = _tickets(runtime, 12)
    arms = {ticket: experiments.arm_of(experiment, ticket).threshold for ticket in ids}
    assert set(arms.values()) == {0.75, 0.85}  # both arms among a dozen tickets

    decided = {ticket: _decide(runtime, ticket) for ticket in ids}
    for ticket, action in decided.items():
        assert (action.experiment_id, action.threshold_arm) == (experiment.id, arms[ticket])
        if arms[ticket] == 0.75:
            assert (action.action_type, action.autonomous) == (ActionType.AUTO_RESOLVE, True), ticket
        else:  # 0.8 is only the medium band under 0.85: the answer is suggested to the team
            assert action.action_type == ActionType.ASSIGN_TO_TEAM, ticket
            assert action.action_params["band"] == "medium"

    with transaction(runtime.sessions) as session:
        figures = {arm.threshold: arm for arm in arm_figures(session, experiment)}
    in_low = sum(1 for arm in arms.values() if arm == 0.75)
    assert (figures[0.75].tickets, figures[0.75].autonomy_rate) == (in_low, 1.0)
    assert (figures[0.85].tickets, figures[0.85].decisions) == (12 - in_low, 12 - in_low)


def test_unsetting_ends_the_experiment_at_the_next_decision(make_runtime):
    with_it = make_runtime(threshold_experiment="0.75,0.85")
    [first, second] = _tickets(with_it, 2)
    assert _decide(with_it, first).experiment_id is not None  # the first decision started it

    without = make_runtime()
    action = _decide(without, second)
    assert (action.experiment_id, action.threshold_arm) == (None, None)
    assert action.action_type == ActionType.AUTO_RESOLVE  # AUTONOMY_THRESHOLD 0.8 again
    with transaction(without.sessions) as session:
        ended = experiments.latest(session)
        assert (ended.running, ended.stop_cause) == (False, ExperimentStop.UNSET)
        assert [e.detail["cause"] for e in _events(session, audit.EXPERIMENT_STOPPED)] == ["unset"]
        # Its results stay readable.
        assert results(session, ended).arms[0].tickets + results(session, ended).arms[1].tickets == 1


# --- Figures ------------------------------------------------------------------------


def _act(session, experiment, arm, action_type=ActionType.AUTO_RESOLVE, *, confidence=0.9, autonomous=True,
         at=NOW - HOUR, ticket=None, answer=None, reopened=False, rating=None):
    ticket = ticket or make_ticket(session, created_at=at - HOUR)
    plan = make_plan(action_type, confidence=confidence, autonomous=autonomous)
    action = actions.execute(session, ticket, plan, now=at, followup_delay=DELAY,
                             arm=(experiment.id, arm) if arm is not None else None)
    if action_type == ActionType.AUTO_RESOLVE:
        resolution = session.scalars(
            select(TicketResolution).where(TicketResolution.action_id == action.id)).one()
        resolution.resolution_confirmed, resolution.reopened = answer, reopened
        resolution.satisfaction_score = rating
        session.flush()
    return action


def _person(session, action, *, at, answer):
    session.add(PersonResolution(
        ticket_id=action.ticket_id, resolved_by="UHELP", team="Network", note="done",
        resolution_confirmed=answer, reopened=answer is False, created_at=at, updated_at=at))
    session.flush()


def _roll_back(action):
    action.rolled_back, action.rolled_back_at, action.rolled_back_by = True, NOW, "UADMIN"


def build(session):
    experiment = experiments.reconcile(session, _settings(), now=STARTED)
    # 0.75: a Yes (5 stars), a No (2 stars), a Yes an admin rolled back (5 stars, not
    # counted), a question then an answer on one ticket (Yes, 4 stars), a triage nobody
    # answered.
    _act(session, experiment, 0.75, confidence=0.8, answer=True, rating=5)
    _act(session, experiment, 0.75, confidence=0.78, answer=False, reopened=True, rating=2)
    _roll_back(_act(session, experiment, 0.75, answer=True, rating=5))
    asked = _act(session, experiment, 0.75, ActionType.REQUEST_CLARIFICATION, confidence=0.5,
                 at=NOW - 3 * HOUR)
    _act(session, experiment, 0.75, confidence=0.8, answer=True, rating=4,
         ticket=session.get(Ticket, asked.ticket_id))
    _act(session, experiment, 0.75, ActionType.ESCALATE, confidence=None, autonomous=False)
    # 0.85: routed then a person's No; a No (1 star); routed then a person's Yes; a
    # resolution rolled back and the ticket resolved again with a Yes (worst wins).
    _person(session, _act(session, experiment, 0.85, ActionType.ASSIGN_TO_TEAM, confidence=0.8),
            at=NOW - HOUR / 2, answer=False)
    _act(session, experiment, 0.85, answer=False, reopened=True, rating=1)
    _person(session, _act(session, experiment, 0.85, ActionType.ASSIGN_TO_TEAM, confidence=0.82),
            at=NOW - HOUR / 2, answer=True)
    undone = _act(session, experiment, 0.85, at=NOW - 4 * HOUR)
    _roll_back(undone)
    _act(session, experiment, 0.85, answer=True, ticket=session.get(Ticket, undone.ticket_id))
    # Outside the experiment: a No that must not count.
    _act(session, None, None, answer=False, reopened=True, rating=1)
    session.flush()
    return experiment


EXPECTED = (
    ArmFigures(0.75, tickets=5, decisions=6, autonomous=5, confirmed=2, reopened=1, rolled_back=1,
               unanswered=1, csat=Csat(satisfied=2, ratings=3)),
    ArmFigures(0.85, tickets=4, decisions=5, autonomous=5, confirmed=1, reopened=2, rolled_back=1,
               unanswered=0, csat=Csat(satisfied=0, ratings=1)),
)


def test_hand_counted_figures_on_postgresql(session):
    experiment = build(session)
    assert arm_figures(session, experiment) == EXPECTED
    assert EXPECTED[0].autonomy_rate == 5 / 6 and EXPECTED[1].reopen_rate == 2 / 3


def test_hand_counted_figures_on_sqlite(sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            experiment = build(session)
        with transaction(factory) as session:
            assert arm_figures(session, experiment) == EXPECTED
            assert results(session, experiment).comparisons[0].verdict == "not_enough"
    finally:
        engine.dispose()


def _recount(session, experiment) -> dict[float, tuple[int, ...]]:
    """Per arm the slow way: every row loaded, each action classified and each ticket
    given its worst outcome in Python."""
    everything = session.scalars(select(ActionHistory)).all()
    acts = [a for a in everything if a.experiment_id == experiment.id and a.action_type in AGENT_ACTIONS]
    outcome = outcome_in_python(session)

    tickets: dict[tuple[float, int], list] = {}
    for a in acts:
        tickets.setdefault((a.threshold_arm, a.ticket_id), []).append(a)
    counted: dict[float, list[int]] = {}
    for (arm, _), mine in tickets.items():
        outcomes = {outcome(a) for a in mine}
        worst = next(o for o in ("rolled_back", "reopened", "confirmed", "unanswered") if o in outcomes)
        row = counted.setdefault(arm, [0] * 7)
        row[0] += 1
        row[1] += len(mine)
        row[2] += sum(a.autonomous for a in mine)
        row[3 + ("confirmed", "reopened", "rolled_back", "unanswered").index(worst)] += 1
    return {arm: tuple(row) for arm, row in counted.items()}


def test_figures_match_a_recount_of_random_history(session):
    experiment = experiments.reconcile(session, _settings("0.7,0.8,0.9"), now=STARTED)
    rng = random.Random(4)
    for _ in range(150):
        arm = rng.choice(experiment.arms + (None,))
        kind = rng.choice(AGENT_ACTIONS)
        at = STARTED + timedelta(hours=rng.randint(1, 24 * 4))
        earlier = rng.random() < 0.2 and session.scalars(select(ActionHistory).limit(1)).first()
        action = _act(session, experiment, arm, kind, at=at, autonomous=rng.random() < 0.7,
                      ticket=session.get(Ticket, earlier.ticket_id) if earlier else None,
                      answer=rng.choice([None, True, False]), reopened=rng.random() < 0.3)
        if kind != ActionType.AUTO_RESOLVE and rng.random() < 0.6:
            _person(session, action, at=at + timedelta(hours=rng.randint(-3, 5)),
                    answer=rng.choice([None, True, False]))
        if rng.random() < 0.1:
            _roll_back(action)
    session.flush()
    expected = _recount(session, experiment)
    counted = arm_figures(session, experiment)
    # Every kind of outcome occurs, in every arm.
    assert all(f.confirmed and f.reopened and f.rolled_back and f.unanswered for f in counted), counted
    for figures in counted:
        assert (figures.tickets, figures.decisions, figures.autonomous, figures.confirmed, figures.reopened,
                figures.rolled_back, figures.unanswered) == expected.get(figures.threshold, (0,) * 7), figures
