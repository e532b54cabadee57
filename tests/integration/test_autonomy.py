"""The autonomy switch (/autonomy's service): pause sends the next confident ticket to
human triage with the bot's suggestion kept, resume brings autonomy back, shadow
records what the bot would have done without acting; AUTONOMOUS_ACTIONS limits which
action types act alone. The switch is in the database: a change made by another
process holds for the next decision, even one whose agent was answering meanwhile.
On PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core import clock
from bot.core.settings import load_settings
from bot.domain import audit, autonomy
from bot.domain.triage_causes import TriageCause, cause_of
from bot.platform import migrations
from bot.workflows.runtime import Runtime
from models import (
    ActionType,
    Actor,
    AuditChainEntry,
    AuditEvent,
    AutonomyMode,
    PersonResolution,
    ShadowDecision,
    TicketResolution,
    TicketSource,
    TicketStatus,
    transaction,
)
from tests.support.factories import make_ticket
from tests.support.scripted_agent import ScriptedAgent, vpn_answer


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        request.getfixturevalue("committing_factory")  # empties the tables afterwards
        return request.getfixturevalue("pg_url")
    url = f"sqlite:///{tmp_path / 'autonomy.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture()
def make_runtime(database_url, settings, namespace):
    """A deciding process on the backend under test (its own engine: its own connections)."""
    made = []

    def build(agent=None, **overrides) -> Runtime:
        runtime = Runtime.from_settings(load_settings(database_url=database_url, **overrides),
                                        namespace=namespace)
        made.append(runtime)
        return dataclasses.replace(runtime, agent=agent or ScriptedAgent())

    yield build
    for runtime in made:
        runtime.engine.dispose()


def _ticket(runtime) -> int:
    with transaction(runtime.sessions) as session:
        ticket = make_ticket(session, description="My VPN keeps disconnecting")
        ticket.source = TicketSource.CLI
        return ticket.ticket_id


def _set(runtime, mode: AutonomyMode, reason: str = "", who: str = "UADMIN") -> autonomy.Change:
    with transaction(runtime.sessions) as session:
        return autonomy.change(session, mode, actor_id=who, reason=reason)


def _read(runtime, query):
    with transaction(runtime.sessions) as session:
        return list(session.scalars(query))


def test_pause_sends_the_next_confident_ticket_to_triage_and_resume_brings_autonomy_back(make_runtime):
    deciding, admin = make_runtime(), make_runtime()  # two processes, one database
    assert _set(admin, AutonomyMode.PAUSED, "new VPN rollout").changed

    paused = deciding.process(_ticket(deciding))
    action = paused.action
    assert (action.action_type, action.autonomous, action.executed_by) == (
        ActionType.ESCALATE, False, Actor.SYSTEM)
    assert paused.ticket.status == TicketStatus.ESCALATED
    # The admin's reason is for admins; the requester reads only that people decide now.
    assert paused.triage_reason == "autonomy is paused by an admin"
    # The bot's idea is kept for the people who take it.
    assert action.action_params["suggestion"]["action_type"] == ActionType.AUTO_RESOLVE
    assert paused.ticket.suggested_action["action_type"] == ActionType.AUTO_RESOLVE
    assert cause_of(paused) == TriageCause.AUTONOMY_PAUSED
    assert _read(deciding, select(TicketResolution)) == []

    assert _set(admin, AutonomyMode.ON).changed
    resumed = deciding.process(_ticket(deciding))
    assert resumed.action.action_type == ActionType.AUTO_RESOLVE and resumed.action.autonomous
    assert resumed.ticket.status == TicketStatus.RESOLVED and resumed.triage_reason is None


def test_a_paused_bot_spends_none_of_the_caps(make_runtime):
    runtime = make_runtime(max_autonomous_actions_per_minute=1)
    _set(runtime, AutonomyMode.PAUSED)
    for _ in range(3):
        assert runtime.process(_ticket(runtime)).action.action_type == ActionType.ESCALATE
    _set(runtime, AutonomyMode.ON)
    assert runtime.process(_ticket(runtime)).action.action_type == ActionType.AUTO_RESOLVE


def test_a_pause_made_while_the_agent_answers_holds_for_that_decision(make_runtime):
    admin = make_runtime()

    class PausedMeanwhile(ScriptedAgent):
        def analyse(self, ticket, *, record=None):
            _set(admin, AutonomyMode.PAUSED, "incident")  # another process, committed
            return super().analyse(ticket, record=record)

    outcome = make_runtime(PausedMeanwhile()).process(_ticket(admin))
    assert outcome.action.action_type == ActionType.ESCALATE and not outcome.action.autonomous
    assert cause_of(outcome) == TriageCause.AUTONOMY_PAUSED


def test_shadow_records_what_the_bot_would_have_done_without_acting(make_runtime):
    runtime = make_runtime()
    _set(runtime, AutonomyMode.SHADOW, "trial week")
    outcome = runtime.process(_ticket(runtime))
    assert outcome.action.action_type == ActionType.ESCALATE and not outcome.action.autonomous
    assert outcome.ticket.status == TicketStatus.ESCALATED
    assert cause_of(outcome) == TriageCause.SHADOW_MODE
    assert _read(runtime, select(TicketResolution)) == []
    [shadow] = _read(runtime, select(ShadowDecision))
    assert (shadow.ticket_id, shadow.action_id, shadow.action_type, shadow.team) == (
        outcome.ticket.ticket_id, outcome.action.id, ActionType.AUTO_RESOLVE, "Network")
    assert shadow.confidence_score == pytest.approx(0.92)

    # Routing alone is acting alone too: recorded, not done.
    unsure = dataclasses.replace(runtime, agent=ScriptedAgent(vpn_answer(confidence=0.65)))
    assert unsure.process(_ticket(runtime)).action.action_type == ActionType.ESCALATE
    # Not a shadow decision: what goes to people anyway (the agent is down).
    down = dataclasses.replace(runtime, agent=ScriptedAgent(fail="timed out"))
    assert down.process(_ticket(runtime)).action.action_type == ActionType.ESCALATE
    shadows = _read(runtime, select(ShadowDecision).order_by(ShadowDecision.id))
    assert [row.action_type for row in shadows] == [ActionType.AUTO_RESOLVE, ActionType.ASSIGN_TO_TEAM]


def test_autonomous_actions_limits_which_types_act_alone(make_runtime):
    runtime = make_runtime(autonomous_actions="ESCALATE,REQUEST_CLARIFICATION")
    outcome = runtime.process(_ticket(runtime))
    assert outcome.action.action_type == ActionType.ESCALATE and not outcome.action.autonomous
    assert "AUTO_RESOLVE may not act alone" in outcome.triage_reason
    assert cause_of(outcome) == TriageCause.NOT_AUTONOMOUS
    asked = dataclasses.replace(runtime, agent=ScriptedAgent(vpn_answer(action="escalate")))
    escalated = asked.process(_ticket(runtime))
    assert escalated.action.autonomous and escalated.action.executed_by == Actor.AGENT


def test_each_change_is_audited_in_the_chain_and_a_repeat_changes_nothing(make_runtime):
    runtime = make_runtime()
    assert _set(runtime, AutonomyMode.PAUSED, "maintenance", who="UADMIN").changed
    again = _set(runtime, AutonomyMode.PAUSED, "again", who="UOTHER")
    assert not again.changed and again.after.reason == "maintenance"
    assert again.after.changed_by == "UADMIN"
    _set(runtime, AutonomyMode.SHADOW, who="UOTHER")
    events = _read(runtime, select(AuditEvent).where(AuditEvent.event_type == audit.AUTONOMY_CHANGED)
                   .order_by(AuditEvent.id))
    assert [(e.actor_id, e.detail) for e in events] == [
        ("UADMIN", {"mode": "paused", "previous": "on", "reason": "maintenance"}),
        ("UOTHER", {"mode": "shadow", "previous": "paused", "reason": ""}),
    ]
    chained = _read(runtime, select(func.count()).select_from(AuditChainEntry))
    assert chained[0] >= 2
    with transaction(runtime.sessions) as session:
        now = autonomy.current(session)
    assert (now.mode, now.changed_by) == (AutonomyMode.SHADOW, "UOTHER")


def test_no_row_means_on(make_runtime):
    runtime = make_runtime()
    with transaction(runtime.sessions) as session:
        assert autonomy.current(session) == autonomy.ON


def test_shadow_comparison_counts_what_people_did_with_the_same_tickets(make_runtime):
    runtime = make_runtime()
    _set(runtime, AutonomyMode.SHADOW)
    first = runtime.process(_ticket(runtime)).ticket.ticket_id
    runtime.process(_ticket(runtime))
    later = clock.now() + timedelta(minutes=5)
    with transaction(runtime.sessions) as session:
        session.add(PersonResolution(ticket_id=first, resolved_by="UHELPER", team="Network",
                                     note="restarted the VPN", resolution_confirmed=True,
                                     created_at=later, updated_at=later))
    with transaction(runtime.sessions) as session:
        compared = autonomy.shadow_comparison(session, days=7)
    assert compared.decisions == 2
    [row] = compared.rows
    assert (row.action_type, row.decisions, row.resolved_by_people, row.same_team, row.confirmed) == (
        ActionType.AUTO_RESOLVE, 2, 1, 1, 1)



def test_the_status_reads_each_caps_use_without_taking_any(redis_url, namespace, settings):
    from bot.domain.ratelimit import AutonomyBudget, make_storage
    from tests.support.harness import free_port

    budget = AutonomyBudget(load_settings(max_autonomous_actions_per_minute=5), make_storage(redis_url),
                            namespace=namespace)
    for _ in range(2):
        assert budget.try_acquire().allowed
    minute, hour, day = budget.windows()
    assert (minute.cap, minute.used, minute.left) == ("5 per 1 minute", 2, 3)
    assert (hour.used, hour.left, day.used, day.left) == (2, 98, 2, 498)
    assert budget.windows()[0].used == 2  # reading took nothing
    down = AutonomyBudget(settings, make_storage(f"redis://127.0.0.1:{free_port()}/0"), namespace=namespace)
    assert down.windows() is None
