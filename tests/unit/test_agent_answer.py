"""The agent's answer at its boundary: whatever an agent sends, what is kept fits the
database and Slack; numbers out of range are refused as malformed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.answer import (
    CATEGORY_LENGTH,
    MAX_STEPS,
    REASONING_LENGTH,
    TEAM_LENGTH,
    AgentAnswer,
    MalformedAnswer,
    clean_text,
)
from tests.support.fake_agent import good_answer

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def test_a_team_longer_than_the_column_is_cut_to_it():
    answer = AgentAnswer.from_wire(good_answer(
        analysis={"category": "vpn", "severity": "low", "suggested_team": "Network " + "x" * 300}))
    assert TEAM_LENGTH == 100
    assert len(answer.suggested_team) == TEAM_LENGTH and answer.suggested_team.startswith("Network x")


def test_nul_and_control_characters_leave_the_reasoning_and_the_steps():
    answer = AgentAnswer.from_wire(good_answer(
        reasoning="Stale\x00 session\x1b[31m.\nReconnect.\ud800",
        solution={"steps": ["Quit\x00 the client", "\x07", "Reconnect\r\n"], "success_probability": 0.9}))
    assert answer.reasoning == "Stale session[31m.\nReconnect."
    assert answer.steps == ("Quit the client", "Reconnect")


def test_long_reasoning_is_cut_and_marked_and_steps_are_capped():
    answer = AgentAnswer.from_wire(good_answer(
        reasoning="why " * 2000, solution={"steps": [f"step {n}" for n in range(50)],
                                           "success_probability": 0.9}))
    assert len(answer.reasoning) == REASONING_LENGTH and answer.reasoning.endswith("…")
    assert len(answer.steps) == MAX_STEPS


def test_a_category_is_one_short_line():
    answer = AgentAnswer.from_wire(good_answer(
        analysis={"category": "Network\n\tand  VPN " + "y" * 50, "severity": "low"}))
    assert answer.category.startswith("network and vpn y") and len(answer.category) == CATEGORY_LENGTH
    assert AgentAnswer.from_wire(good_answer(analysis={"category": "\x00\x00"})).category == "other"


def test_an_empty_team_after_cleaning_is_no_team():
    answer = AgentAnswer.from_wire(good_answer(analysis={"category": "vpn", "suggested_team": "\x00 \x01"}))
    assert answer.suggested_team is None


def test_the_llm_agents_questions_are_cleaned_too():
    answer = AgentAnswer(confidence=0.5, recommended_action="request_clarification", reasoning="",
                         extra={"questions": ["Which\x00 laptop?", "\x00", 7], "model": "m"})
    assert answer.extra == {"questions": ["Which laptop?"], "model": "m"}


@pytest.mark.parametrize("field", ["confidence", "success_probability"])
@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), "high", True])
def test_numbers_out_of_range_are_malformed_whoever_built_the_answer(field, value):
    with pytest.raises(MalformedAnswer, match="outside 0..1|not a number"):
        AgentAnswer(**{"confidence": 0.9, "recommended_action": "escalate", "reasoning": "", field: value})


def test_cleaning_twice_changes_nothing():
    once = AgentAnswer.from_wire(good_answer(reasoning="a\x00b " * 900))
    assert AgentAnswer(**{f: getattr(once, f) for f in once.__dataclass_fields__}) == once


@given(text=st.text(), limit=st.integers(min_value=1, max_value=200), one_line=st.booleans())
def test_clean_text_is_safe_and_within_the_limit(text, limit, one_line):
    cleaned = clean_text(text, limit, one_line=one_line)
    assert len(cleaned) <= limit
    assert not UNSAFE.search(cleaned)
    cleaned.encode("utf-8")  # no lone surrogate left to fail the database driver
    if one_line:
        assert "\n" not in cleaned and "\t" not in cleaned
