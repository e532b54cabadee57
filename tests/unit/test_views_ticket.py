"""What the requester and the ticket's thread see."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.views import (
    ActionId,
    action_thread_message,
    answered_resolution_message,
    followup_dm,
    parse_feedback_value,
    parse_why_value,
    reasoning_message,
    resolution_message,
    ticket_received,
)
from bot.views.ids import RATING_ACTION_RE
from models import ActionType, Actor
from tests.support import view_samples as s


def test_ticket_received_acks_with_the_ticket_number():
    text, blocks = ticket_received(7, "Printer on floor 3 is jammed")
    assert "ticket #7" in text and "looking into it" in text
    shown = s.all_text(blocks)
    assert "#7" in shown and "Printer on floor 3 is jammed" in shown
    assert "in this channel" in shown and "by DM" in shown
    s.assert_within_limits(blocks)


def test_a_private_ack_promises_a_dm_and_no_channel_post():
    for busy in (False, True):
        _, blocks = ticket_received(7, "Printer on floor 3 is jammed", busy=busy, privately=True)
        shown = s.all_text(blocks)
        assert "send you my answer by DM" in shown and "this channel" not in shown


def test_resolution_message_shows_steps_confidence_and_the_buttons():
    ticket, action = s.ticket(), s.action()
    text, blocks = resolution_message(ticket, action, ticket_text=ticket.description)
    shown = s.all_text(blocks)
    assert "1. Open the VPN client\n2. Sign out and in again" in shown
    assert "92%" in shown
    assert "My VPN keeps disconnecting" in shown
    assert "Ticket #42" in shown and "3f2a9c1e" in shown
    assert "#42" in text

    found = s.buttons(blocks)
    assert parse_why_value(found[ActionId.WHY]["value"]) == action.id
    for yes_no in (ActionId.FEEDBACK_YES, ActionId.FEEDBACK_NO):
        assert parse_feedback_value(found[yes_no]["value"]) == (42, None)
    stars = {k: v for k, v in found.items() if RATING_ACTION_RE.match(k)}
    assert len(stars) == 5
    for action_id, star in stars.items():
        score = int(RATING_ACTION_RE.match(action_id).group(1))
        assert parse_feedback_value(star["value"]) == (42, score)
        assert star["text"]["text"].count("★") == score
    s.assert_within_limits(blocks)


def test_buttons_share_no_action_id_within_a_block():
    _, blocks = resolution_message(s.ticket(), s.action(), ticket_text="x")
    for block in blocks:
        if block["type"] == "actions":
            ids = [e["action_id"] for e in block["elements"]]
            assert len(ids) == len(set(ids))


def test_resolution_without_steps_still_reads():
    _, blocks = resolution_message(
        s.ticket(), s.action(action_params={}, confidence_score=0.805), ticket_text="x"
    )
    shown = s.all_text(blocks)
    assert "resolved" in shown and "80%" in shown
    s.assert_within_limits(blocks)


def test_an_action_without_an_id_cannot_be_rendered():
    with pytest.raises(ValueError, match="flush"):
        resolution_message(s.ticket(), s.action(id=None), ticket_text="x")


@pytest.mark.parametrize(
    ("confirmed", "score", "says", "buttons_left"),
    [
        (True, None, "You said this solved it", {"rate_1"}),
        (False, None, "You said it did not — reopened for *Network*", {"rate_1"}),
        (True, 4, "Rated 4/5", set()),
        (None, 2, "Rated 2/5", {ActionId.FEEDBACK_YES, ActionId.FEEDBACK_NO}),
    ],
)
def test_answered_message_replaces_buttons_with_the_answer(confirmed, score, says, buttons_left):
    ticket = s.ticket()
    resolution = s.resolution(resolution_confirmed=confirmed, satisfaction_score=score)
    _, blocks = answered_resolution_message(ticket, s.action(), resolution)
    shown = s.all_text(blocks)
    assert says in shown
    found = set(s.buttons(blocks)) - {ActionId.WHY}
    assert buttons_left <= found
    if confirmed is not None:
        assert ActionId.FEEDBACK_YES not in found and ActionId.FEEDBACK_NO not in found
    if score is not None:
        assert not any(RATING_ACTION_RE.match(k) for k in found)
    else:
        assert {f"rate_{n}" for n in range(1, 6)} <= found
    assert "1. Open the VPN client" in shown
    s.assert_within_limits(blocks)


def test_answered_message_for_a_withdrawn_answer_asks_nothing():
    action = s.action(rolled_back=True, rolled_back_by="UADMIN1")
    _, blocks = answered_resolution_message(s.ticket(), action, s.resolution())
    assert "withdrew" in s.all_text(blocks)
    assert set(s.buttons(blocks)) == {ActionId.WHY}


def test_followup_dm_has_the_same_buttons():
    ticket, action = s.ticket(), s.action()
    text, blocks = followup_dm(ticket, action, now=s.NOW)
    assert text.startswith("Yesterday I suggested") and "Did it solve it?" in text
    found = s.buttons(blocks)
    assert parse_feedback_value(found[ActionId.FEEDBACK_YES]["value"]) == (42, None)
    assert parse_feedback_value(found["rate_5"]["value"]) == (42, 5)
    assert "Sign out and in again" in s.all_text(blocks)
    s.assert_within_limits(blocks)


@pytest.mark.parametrize(
    ("age", "lead"),
    [(timedelta(minutes=30), "Earlier today"), (timedelta(days=3), "On 2024-04-29")],
)
def test_followup_dm_says_when_it_was(age, lead):
    text, _ = followup_dm(s.ticket(), s.action(executed_at=s.NOW - age), now=s.NOW)
    assert text.startswith(lead)
    assert followup_dm(s.ticket(), s.action())[0].startswith("Earlier I suggested")


def test_escalation_names_team_and_priority():
    action = s.action(
        action_type=ActionType.ESCALATE,
        action_params={"team": "Security", "priority": "critical", "band": "low"},
    )
    text, blocks = action_thread_message(s.ticket(), action)
    assert "Escalated to Security (priority critical)" in text
    assert "Escalated to *Security* (priority critical)" in s.all_text(blocks)
    assert parse_why_value(s.buttons(blocks)[ActionId.WHY]["value"]) == action.id
    s.assert_within_limits(blocks)


def test_assignment_with_a_suggested_answer_shows_it_to_the_team():
    action = s.action(
        action_type=ActionType.ASSIGN_TO_TEAM,
        action_params={"team": "Desktop", "steps": ["Reinstall the driver"], "suggested_answer": True},
    )
    text, blocks = action_thread_message(s.ticket(), action)
    shown = s.all_text(blocks)
    assert "Assigned to Desktop" in text
    assert "Suggested answer for the team:*\n1. Reinstall the driver" in shown


def test_assignment_without_suggestion_does_not_show_steps():
    action = s.action(
        action_type=ActionType.ASSIGN_TO_TEAM, action_params={"team": "Desktop", "steps": ["Secret step"]}
    )
    _, blocks = action_thread_message(s.ticket(), action)
    assert "Secret step" not in s.all_text(blocks)


def test_clarification_lists_the_questions():
    action = s.action(
        action_type=ActionType.REQUEST_CLARIFICATION,
        action_params={"questions": ["Which device?", "Since when?"]},
    )
    _, blocks = action_thread_message(s.ticket(), action)
    shown = s.all_text(blocks)
    assert "• Which device?\n• Since when?" in shown
    assert "Reply in this thread" in shown


def test_human_triage_names_the_team_and_the_reason():
    action = s.action(
        action_type=ActionType.ESCALATE,
        executed_by=Actor.SYSTEM,
        autonomous=False,
        confidence_score=None,
        action_params={
            "team": "Service Desk",
            "priority": "medium",
            "triage": True,
            "reason": "the hourly cap of 100 autonomous actions is reached",
            "suggestion": {"action_type": ActionType.AUTO_RESOLVE, "confidence": 0.9, "params": {}},
        },
    )
    text, blocks = action_thread_message(s.ticket(), action)
    shown = s.all_text(blocks)
    assert "A person from *Service Desk* will pick this up: the hourly cap" in shown
    assert "A person from Service Desk will pick this up" in text
    assert "AUTO RESOLVE (90%)" in shown
    assert "n/a" in shown


def test_auto_resolve_in_thread_is_the_full_answer():
    ticket, action = s.ticket(), s.action()
    assert action_thread_message(ticket, action) == resolution_message(
        ticket, action, ticket_text=ticket.description
    )


def test_reasoning_message_explains():
    action = s.action(agent_reasoning="Matched <b>vpn</b> & more")
    text, blocks = reasoning_message(action)
    shown = s.all_text(blocks)
    assert "92%" in shown and "high" in shown and "autonomous agent" in shown
    assert "2024-05-01 09:30 UTC" in shown
    assert "Matched &lt;b&gt;vpn&lt;/b&gt; &amp; more" in shown
    assert "3f2a9c1e" in shown
    assert "92%" in text
    s.assert_within_limits(blocks)


def test_reasoning_message_mentions_a_rollback():
    action = s.action(
        rolled_back=True, rolled_back_by="UADMIN1", rolled_back_at=s.NOW, rollback_reason="wrong fix"
    )
    shown = s.all_text(reasoning_message(action)[1])
    assert "Rolled back by <@UADMIN1> at 2024-05-02 09:30 UTC (wrong fix)" in shown
