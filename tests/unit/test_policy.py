"""The confidence-band policy: what the bot does with an agent's answer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.answer import AgentAnswer
from bot.core.settings import load_settings
from bot.domain import policy
from bot.domain.policy import Band
from models import ActionType, EscalationPriority

SETTINGS = load_settings(database_url="sqlite://")


def answer(confidence=0.9, action="auto_resolve", success=0.9, severity="low", category="vpn",
           team="Network"):
    return AgentAnswer(
        confidence=confidence, recommended_action=action, reasoning="Matched KB article 'vpn'.",
        category=category, severity=severity, suggested_team=team, steps=("Reconnect",),
        success_probability=success, source="vpn",
    )


@pytest.mark.parametrize(
    ("kwargs", "expected", "band"),
    [
        ({}, ActionType.AUTO_RESOLVE, Band.HIGH),
        ({"confidence": 0.8}, ActionType.AUTO_RESOLVE, Band.HIGH),
        ({"success": 0.79}, ActionType.ASSIGN_TO_TEAM, Band.HIGH),
        ({"action": "escalate"}, ActionType.ESCALATE, Band.HIGH),
        ({"action": "assign_to_team"}, ActionType.ASSIGN_TO_TEAM, Band.HIGH),
        ({"action": "request_clarification"}, ActionType.REQUEST_CLARIFICATION, Band.HIGH),
        ({"confidence": 0.79}, ActionType.ASSIGN_TO_TEAM, Band.MEDIUM),
        ({"confidence": 0.6, "action": "escalate"}, ActionType.ESCALATE, Band.MEDIUM),
        ({"confidence": 0.7, "action": "request_clarification"}, ActionType.REQUEST_CLARIFICATION,
         Band.MEDIUM),
        ({"confidence": 0.59}, ActionType.REQUEST_CLARIFICATION, Band.LOW),
        ({"confidence": 0.1}, ActionType.REQUEST_CLARIFICATION, Band.VERY_LOW),
        ({"confidence": 0.1, "severity": "critical"}, ActionType.ESCALATE, Band.VERY_LOW),
        ({"confidence": 0.5, "category": "security"}, ActionType.ESCALATE, Band.LOW),
        ({"confidence": 0.95, "category": "data_loss"}, ActionType.ESCALATE, Band.HIGH),
    ],
)
def test_bands(kwargs, expected, band):
    planned = policy.plan(answer(**kwargs), SETTINGS)
    assert planned.action_type == expected
    assert planned.params["band"] == band
    assert planned.autonomous is True
    assert planned.confidence == answer(**kwargs).confidence


def test_medium_band_suggests_the_answer_to_the_owning_team():
    planned = policy.plan(answer(confidence=0.7), SETTINGS)
    assert planned.params["team"] == "Network"
    assert planned.params["steps"] == ["Reconnect"]
    assert planned.params["suggested_answer"] is True
    assert "medium band" in planned.reasoning and "Matched KB article" in planned.reasoning


def test_critical_escalation_is_critical_priority():
    planned = policy.plan(answer(confidence=0.2, severity="critical", category="outage"), SETTINGS)
    assert planned.params["priority"] == EscalationPriority.CRITICAL


def test_unknown_action_goes_to_human_triage():
    planned = policy.plan(answer(action="reboot_the_datacenter"), SETTINGS)
    assert planned.action_type == ActionType.ESCALATE
    assert planned.autonomous is False
    assert planned.params["triage"] is True
    assert "reboot_the_datacenter" in planned.reasoning
    assert planned.params["team"] == SETTINGS.default_team


def test_thresholds_come_from_settings():
    strict = load_settings(database_url="sqlite://", autonomy_threshold=0.95)
    assert policy.plan(answer(confidence=0.9), strict).action_type == ActionType.ASSIGN_TO_TEAM
    lenient = load_settings(database_url="sqlite://", auto_resolve_min_success=0.5)
    assert policy.plan(answer(success=0.6), lenient).action_type == ActionType.AUTO_RESOLVE


def test_no_team_from_the_agent_falls_back_to_the_default_team():
    planned = policy.plan(answer(confidence=0.7, team=None), SETTINGS)
    assert planned.params["team"] == SETTINGS.default_team == "Service Desk"


@given(
    confidence=st.floats(0, 1),
    success=st.floats(0, 1),
    action=st.sampled_from(["auto_resolve", "escalate", "assign_to_team",
                            "request_clarification", "schedule_followup"]),
    severity=st.sampled_from(["low", "medium", "high", "critical"]),
    category=st.sampled_from(["vpn", "security", "outage", "email", "other"]),
)
def test_auto_resolve_only_when_every_condition_holds(confidence, success, action, severity, category):
    planned = policy.plan(answer(confidence, action, success, severity, category), SETTINGS)
    if planned.action_type == ActionType.AUTO_RESOLVE:
        assert confidence >= SETTINGS.autonomy_threshold
        assert success >= SETTINGS.auto_resolve_min_success
        assert action == "auto_resolve"
        assert severity != "critical" and category not in policy.CRITICAL_CATEGORIES
    if severity == "critical" or category in policy.CRITICAL_CATEGORIES:
        assert planned.action_type == ActionType.ESCALATE
    assert planned.reasoning


@pytest.mark.parametrize("confidence", [0.9, 0.7])
def test_the_agents_own_questions_are_asked_when_it_has_some(confidence):
    asked = ["Which VPN client do you use?", "Since when?"]
    mine = AgentAnswer(confidence=confidence, recommended_action="request_clarification",
                       reasoning="Which client?", extra={"questions": asked})
    assert policy.plan(mine, SETTINGS).params["questions"] == asked
    general = policy.plan(answer(confidence=confidence, action="request_clarification"), SETTINGS)
    assert general.params["questions"] and general.params["questions"] != asked
