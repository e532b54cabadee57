"""What a team sees in its channel, and what the requester sees of a person's work."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.views import (
    ActionId,
    BlockId,
    CallbackId,
    NoticeKind,
    NoticeState,
    answered_person_resolution_message,
    is_team_notice,
    parse_feedback_target,
    parse_ticket_value,
    person_feedback_value,
    person_followup_dm,
    person_resolution_message,
    redraw_team_notice,
    resolution_message,
    resolve_modal,
    taken_notice,
    team_notice,
    ticket_value,
)
from bot.views.ids import MAX_TICKET_ID
from models import ActionType, Actor
from tests.support import view_samples as s

STEPS = ["Open the VPN client", "Sign out and in again"]


def _routed(**params):
    return s.action(action_type=ActionType.ASSIGN_TO_TEAM, confidence_score=0.72,
                    action_params={"team": "Network", "steps": STEPS, **params})


def _block(blocks, block_id):
    return next((b for b in blocks if b.get("block_id") == block_id), None)


# The notice --------------------------------------------------------------------------

def test_a_routing_notice_shows_who_asked_the_request_and_the_suggestion_with_two_buttons():
    text, blocks = team_notice(s.ticket(), kind=NoticeKind.ROUTED, team="Network", action=_routed())

    shown = s.all_text(blocks)
    assert text == "Ticket #42 routed to Network"
    assert "*Ticket #42 routed to Network*" in shown
    assert "<@UREQ1>" in shown and "> My VPN keeps disconnecting" in shown
    assert "*The bot's suggestion* (confidence *72%*)" in shown
    assert "1. Open the VPN client\n2. Sign out and in again" in shown
    buttons = s.buttons(blocks)
    assert set(buttons) == {ActionId.TEAM_TAKE, ActionId.TEAM_RESOLVE}
    assert {b["value"] for b in buttons.values()} == {"t=42"}
    assert buttons[ActionId.TEAM_TAKE]["style"] == "primary"
    assert _block(blocks, BlockId.TEAM_STATE) is None
    assert is_team_notice(blocks)
    s.assert_within_limits(blocks)


def test_the_request_is_cut_with_an_ellipsis_to_one_section():
    request = "word " * 2000
    _, blocks = team_notice(s.ticket(description=request), kind=NoticeKind.ROUTED, team="Network",
                            action=_routed())
    [section] = [b for b in blocks if "The request:" in (b.get("text") or {}).get("text", "")]
    assert len(section["text"]["text"]) <= 3000 and section["text"]["text"].endswith("…")
    s.assert_within_limits(blocks)


def test_an_escalation_shows_its_priority():
    escalation = s.action(action_type=ActionType.ESCALATE, confidence_score=0.4,
                          action_params={"team": "Security", "priority": "critical", "steps": []})
    text, blocks = team_notice(s.ticket(), kind=NoticeKind.ESCALATED, team="Security", action=escalation)
    shown = s.all_text(blocks)
    assert text == "Ticket #42 escalated to Security"
    assert "*Priority*\ncritical" in shown
    assert "(confidence *40%*): no steps to suggest." in shown


def test_triage_shows_the_suggestion_it_did_not_apply_or_says_there_is_none():
    triage = s.action(action_type=ActionType.ESCALATE, confidence_score=None, executed_by=Actor.SYSTEM,
                      action_params={"team": "Service Desk", "triage": True, "priority": "medium",
                                     "reason": "autonomy cap reached",
                                     "suggestion": {"action_type": "AUTO_RESOLVE", "confidence": 0.93,
                                                    "params": {"steps": STEPS}}})
    text, blocks = team_notice(s.ticket(), kind=NoticeKind.TRIAGE, team="Service Desk", action=triage,
                               reason="autonomy cap reached")
    shown = s.all_text(blocks)
    assert text == "Ticket #42 needs a person"
    assert "*Ticket #42 needs a person*: autonomy cap reached" in shown
    assert "*The bot's suggestion, not applied:* AUTO RESOLVE (confidence *93%*)" in shown
    assert "1. Open the VPN client" in shown

    bare = s.action(action_type=ActionType.ESCALATE, confidence_score=None,
                    action_params={"team": "Service Desk", "triage": True})
    assert "The bot has no suggestion" in s.all_text(
        team_notice(s.ticket(), kind=NoticeKind.TRIAGE, team=None, action=bare)[1])


def test_a_reopen_says_whose_answer_did_not_work_and_what_the_requester_said():
    _, bots = team_notice(s.ticket(), kind=NoticeKind.REOPENED, team="Network", action=s.action())
    shown = s.all_text(bots)
    assert "the requester said the bot's answer did not solve it" in shown
    assert "*What the bot suggested* (confidence *92%*), which did not solve it:" in shown

    resolve = s.action(action_type=ActionType.RESOLVE, executed_by="UTEAM1", confidence_score=None,
                       agent_reasoning="Replaced the cable", action_params={"team": "Network"})
    _, persons = team_notice(s.ticket(), kind=NoticeKind.REOPENED, team="Network", action=resolve,
                             reason="still no network <!here>")
    shown = s.all_text(persons)
    assert "the requester said <@UTEAM1>'s resolution did not solve it" in shown
    assert "*What was done*, which did not solve it:\n> Replaced the cable" in shown
    assert "*The requester said:*\n> still no network &lt;!here&gt;" in shown


def test_a_rollback_notice_names_what_was_undone_and_why_in_its_text():
    undone = s.action(rolled_back=True, rollback_reason="wrong article")
    text, blocks = team_notice(s.ticket(), kind=NoticeKind.ROLLED_BACK, team="Network", action=undone,
                               reason="wrong article")
    assert text == ("Ticket #42 needs a person: an admin rolled back the bot's AUTO RESOLVE "
                    "`3f2a9c1e` (wrong article)")
    take = s.action(action_type=ActionType.TAKE, executed_by="UTEAM1", confidence_score=None)
    _, blocks = team_notice(s.ticket(), kind=NoticeKind.ROLLED_BACK, team="Network", action=take)
    assert "an admin rolled back <@UTEAM1>'s take (no reason given)" in s.all_text(blocks)


def test_the_redraw_keeps_what_was_posted_and_shows_who_has_it():
    _, posted = team_notice(s.ticket(), kind=NoticeKind.ROUTED, team="Network", action=_routed())

    taken = redraw_team_notice(posted, ticket_id=42, state=NoticeState(holder="UTEAM1"))
    assert taken[:4] == posted[:4]
    assert _block(taken, BlockId.TEAM_STATE)["text"]["text"] == ":raising_hand: <@UTEAM1> has it."
    assert set(s.buttons(taken)) == {ActionId.TEAM_TAKE, ActionId.TEAM_RESOLVE}
    # Taken: someone else may still take it over, but it is no longer the first thing to do.
    assert s.buttons(posted)[ActionId.TEAM_TAKE]["text"]["text"] == "Take it"
    assert s.buttons(taken)[ActionId.TEAM_TAKE]["text"]["text"] == "Take over"
    assert "style" not in s.buttons(taken)[ActionId.TEAM_TAKE]
    again = redraw_team_notice(taken, ticket_id=42, state=NoticeState(holder="UOTHER"))
    assert [b.get("block_id") for b in again] == [b.get("block_id") for b in taken]
    assert len(again) == len(taken) == len(posted) + 1
    assert "<@UOTHER> has it" in s.all_text(again) and "UTEAM1" not in s.all_text(again)
    s.assert_within_limits(again)

    done = redraw_team_notice(taken, ticket_id=42, state=NoticeState(
        holder="UTEAM1", resolved=True, resolved_by="UTEAM1", note="Swapped the dock <!channel>"))
    assert s.buttons(done) == {}
    assert "*Resolved by <@UTEAM1>.*\n> Swapped the dock &lt;!channel&gt;" in s.all_text(done)
    # Nothing is left that says it can still be taken.
    assert _block(done, BlockId.TEAM_HINT) is None and "can take" not in s.all_text(done)
    assert not is_team_notice(done) and is_team_notice(posted)
    s.assert_within_limits(done)


# The modal ---------------------------------------------------------------------------

def test_the_resolve_modal_carries_the_ticket_and_asks_for_a_note():
    view = resolve_modal(s.ticket())

    assert view["type"] == "modal" and view["callback_id"] == CallbackId.RESOLVE_TICKET
    assert parse_ticket_value(view["private_metadata"]) == 42
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["block_id"] == BlockId.RESOLUTION_NOTE
    assert field["element"]["action_id"] == ActionId.RESOLUTION_NOTE
    assert field["element"]["multiline"] is True and field["element"]["max_length"] == 3000
    assert "> My VPN keeps disconnecting" in s.all_text(view["blocks"])
    assert len(view["title"]["text"]) <= 24


# The requester's side ----------------------------------------------------------------

def test_a_persons_resolution_asks_what_the_bots_answer_asks_on_its_own_record():
    person = s.person_resolution()
    text, blocks = person_resolution_message(s.ticket(), person)
    _, bots = resolution_message(s.ticket(), s.action(), ticket_text="x")

    shown = s.all_text(blocks)
    assert "<@UTEAM1> from *Network* resolved your ticket *#42*" in shown
    assert "*What was done:*\n> Re-enrolled the laptop in the VPN profile" in shown
    ours, theirs = s.buttons(blocks), s.buttons(bots)
    # The same questions (Yes/No, five stars), minus "Why?": a person has no confidence.
    assert set(ours) == set(theirs) - {ActionId.WHY}
    assert {b["value"] for a, b in ours.items() if a.startswith("feedback")} == {"t=42;p=7"}
    assert ours["rate_4"]["value"] == "t=42;p=7;s=4"
    assert [b.get("block_id") for b in blocks if b.get("block_id")] == [
        BlockId.ANSWER, BlockId.FEEDBACK, BlockId.RATING, BlockId.TICKET_CONTEXT]
    assert text == "Ticket #42 was resolved: Re-enrolled the laptop in the VPN profile. Did this solve it?"
    assert person_resolution_message(s.ticket(), s.person_resolution(note="Done."))[0] == (
        "Ticket #42 was resolved: Done. Did this solve it?")
    s.assert_within_limits(blocks)


def test_the_answered_resolution_replaces_only_what_was_answered():
    no = s.person_resolution(resolution_confirmed=False)
    _, blocks = answered_person_resolution_message(s.ticket(), no)
    shown = s.all_text(blocks)
    assert "You said it did not — reopened for *Network*" in shown
    assert ActionId.FEEDBACK_YES not in s.buttons(blocks) and "rate_5" in s.buttons(blocks)

    rated = s.person_resolution(resolution_confirmed=True, satisfaction_score=4)
    _, blocks = answered_person_resolution_message(s.ticket(), rated)
    assert s.buttons(blocks) == {}
    assert "Rated 4/5 ★★★★☆" in s.all_text(blocks)

    _, blocks = answered_person_resolution_message(s.ticket(), rated, withdrawn=True)
    assert "An admin withdrew this resolution" in s.all_text(blocks) and s.buttons(blocks) == {}


def test_the_follow_up_dm_and_the_taken_notice():
    text, blocks = person_followup_dm(s.ticket(), s.person_resolution(), now=s.NOW)
    assert text == "Yesterday <@UTEAM1> resolved your ticket #42. Did it solve it?"
    assert s.buttons(blocks)[ActionId.FEEDBACK_NO]["value"] == "t=42;p=7"
    text, blocks = taken_notice(s.ticket(), holder="UTEAM1", team="Network")
    assert text == "<@UTEAM1> from Network is on your ticket #42."
    assert s.buttons(blocks) == {}


# Values ------------------------------------------------------------------------------

ids = st.integers(min_value=1, max_value=MAX_TICKET_ID)


@given(ids, ids, st.none() | st.integers(min_value=1, max_value=5))
def test_person_feedback_values_round_trip(ticket_id, resolution_id, score):
    value = person_feedback_value(ticket_id, resolution_id, score=score)
    assert parse_feedback_target(value) == (ticket_id, resolution_id, score)


def test_the_bots_feedback_values_read_as_the_bots():
    assert parse_feedback_target("t=12") == (12, None, None)
    assert parse_feedback_target("t=12;s=3") == (12, None, 3)


@pytest.mark.parametrize("value", [
    "t=1;p=", "t=1;p=0", "t=1;p=07", "t=1;p=2;s=6", "t=1;s=2;p=3", "p=2;t=1", "t=1;p=2;", "t=1;p=2\n",
    f"t=1;p={MAX_TICKET_ID + 1}", "t=1;p=٣", None, 12,
])
def test_anything_else_is_refused(value):
    with pytest.raises(ValueError):
        parse_feedback_target(value)


@given(ids)
def test_ticket_values_round_trip(ticket_id):
    assert parse_ticket_value(ticket_value(ticket_id)) == ticket_id


@pytest.mark.parametrize("value", ["", "t=", "t=0", "t=01", "t=1;s=2", "t=1;p=2", " t=1", "t=1 ",
                                   f"t={MAX_TICKET_ID + 1}", "t=١", None, {"t": 1}])
def test_a_ticket_value_is_read_strictly(value):
    with pytest.raises(ValueError):
        parse_ticket_value(value)


def test_a_triage_notice_quotes_what_the_requester_added_in_order_escaped_and_within_limits():
    triage = s.action(action_type=ActionType.ESCALATE, confidence_score=None, executed_by=Actor.SYSTEM,
                      action_params={"team": "Service Desk", "triage": True,
                                     "reason": "no confident answer after 2 rounds of questions"})
    _, blocks = team_notice(s.ticket(), kind=NoticeKind.TRIAGE, team="Service Desk", action=triage,
                            replies=["since this morning", "on <!channel> & the laptop"])
    shown = s.all_text(blocks)
    assert ("*The requester added, when asked:*\n> since this morning\n\n"
            "> on &lt;!channel&gt; &amp; the laptop") in shown
    assert shown.index("The request:") < shown.index("The requester added") < shown.index("suggestion")

    _, long = team_notice(s.ticket(), kind=NoticeKind.TRIAGE, team="Service Desk", action=triage,
                          replies=["word " * 1500] * 12)
    [added] = [b for b in long if "The requester added" in (b.get("text") or {}).get("text", "")]
    assert len(added["text"]["text"]) <= 3000 and added["text"]["text"].count("> word") == 12
    s.assert_within_limits(long)
    assert "requester added" not in s.all_text(
        team_notice(s.ticket(), kind=NoticeKind.TRIAGE, team=None, action=triage, replies=[" "])[1])
