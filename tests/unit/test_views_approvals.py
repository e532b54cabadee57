"""What two-person rollback looks like: the request in the approvals channel, its
outcomes, the reject modal, what the asker is told; and the confirm step, the thread
notice and /history naming both people."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from bot.domain.rollback import RollbackResult
from bot.views import (
    ActionId,
    BlockId,
    CallbackId,
    history_blocks,
    parse_request_value,
    reject_modal,
    request_outcome_dm,
    request_sent,
    request_value,
    rollback_confirm,
    rollback_done,
    rollback_request_message,
    rollback_thread_notice,
)
from models import ActionType, RequestStatus, RollbackRequest
from tests.support import view_samples as s

ROLLBACK_ID = uuid.UUID("5b6c7d8e-0000-4000-8000-000000000001")


def _request(**fields) -> RollbackRequest:
    values = {
        "id": 12, "action_id": s.ACTION_ID, "ticket_id": 42, "requested_by": "UASKER",
        "reason": "wrong answer",
        "diff": {"status": ["resolved", "new"], "resolved_at": [s.NOW.isoformat(), None]},
        "created_at": s.NOW, "expires_at": s.NOW + timedelta(hours=1), "status": RequestStatus.PENDING,
        "decided_by": None, "decided_at": None, "decision_reason": "", "shown_status": RequestStatus.PENDING,
    }
    values.update(fields)
    return RollbackRequest(**values)


def _block(blocks, block_id):
    return next((b for b in blocks if b.get("block_id") == block_id), None)


def test_a_pending_request_shows_who_asked_why_the_diff_and_approve_reject():
    text, blocks = rollback_request_message(_request(), s.action())

    shown = s.all_text(blocks)
    assert text == "Rollback approval needed: AUTO RESOLVE 3f2a9c1e on ticket #42, asked by <@UASKER>."
    assert "Rollback approval needed" in shown and "`3f2a9c1e`" in shown and "#42" in shown
    assert "*Asked by*\n<@UASKER>" in shown and "*Reason*\nwrong answer" in shown
    assert "• `status`: resolved → _(none)_" not in shown and "• `status`: resolved → new" in shown
    assert "• `resolved_at`: 2024-05-02 09:30 UTC → _(none)_" in shown
    assert "<@UASKER> cannot" in shown and "2024-05-02 10:30 UTC" in shown
    buttons = s.buttons(blocks)
    assert set(buttons) == {ActionId.ROLLBACK_APPROVE, ActionId.ROLLBACK_REJECT}
    assert {b["value"] for b in buttons.values()} == {"q=12"}
    assert (buttons[ActionId.ROLLBACK_APPROVE]["style"], buttons[ActionId.ROLLBACK_REJECT]["style"]) == (
        "primary", "danger")
    s.assert_within_limits(blocks)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"status": RequestStatus.APPROVED, "decided_by": "UAPPROVER",
      "decided_at": s.NOW + timedelta(minutes=5)},
     ":white_check_mark: *Approved* by <@UAPPROVER> at 2024-05-02 09:35 UTC: action `3f2a9c1e` is rolled "
     "back (asked by <@UASKER>)."),
    ({"status": RequestStatus.REJECTED, "decided_by": "UAPPROVER", "decided_at": s.NOW,
      "decision_reason": "It was right " + s.EVIL},
     ":x: *Rejected* by <@UAPPROVER> at 2024-05-02 09:30 UTC: It was right &lt;!channel&gt; hi "
     "&lt;@U123&gt; &amp; &lt;https://evil|click&gt;. Nothing was rolled back."),
    ({"status": RequestStatus.EXPIRED, "decided_at": s.NOW + timedelta(hours=2)},
     ":hourglass: *Expired* at 2024-05-02 10:30 UTC: nobody approved it in time. Nothing was rolled back."),
])
def test_a_decided_request_shows_its_outcome_in_place_of_the_buttons(fields, expected):
    text, blocks = rollback_request_message(_request(**fields), s.action())

    assert s.buttons(blocks) == {} and _block(blocks, BlockId.APPROVAL_ACTIONS) is None
    assert _block(blocks, BlockId.APPROVAL_OUTCOME)["text"]["text"] == expected
    assert text == f"Rollback request #12 (3f2a9c1e, ticket #42): {fields['status'].value}."
    s.assert_within_limits(blocks)


def test_peoples_text_in_a_request_is_escaped_and_cut():
    text, blocks = rollback_request_message(_request(reason=s.EVIL * 100), s.action())
    assert "<!channel>" not in s.dumped(blocks) and "<https://evil" not in s.dumped(blocks)
    s.assert_within_limits(blocks)


def test_the_reject_modal_carries_the_request_and_asks_why():
    view = reject_modal(_request())
    assert (view["type"], view["callback_id"], view["private_metadata"]) == (
        "modal", CallbackId.REJECT_ROLLBACK, "q=12")
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert (field["block_id"], field["element"]["action_id"]) == (
        BlockId.REJECT_REASON, ActionId.REJECT_REASON)
    assert field["element"]["max_length"] == 500 and not field.get("optional")


def test_the_asker_hears_where_it_waits_and_how_it_ended():
    text, _ = request_sent(_request(), "CAPPROVALS")
    assert text.startswith("Asked for approval in <#CAPPROVALS>: rollback request #12 of action `3f2a9c1e`")
    text, blocks = request_outcome_dm(_request(status=RequestStatus.REJECTED, decided_by="UBOSS1",
                                               decided_at=s.NOW, decision_reason="no"))
    assert text == "Your rollback request #12 (action `3f2a9c1e` on ticket #42): rejected."
    assert "*Rejected* by <@UBOSS1>" in s.all_text(blocks)


def test_the_confirm_step_in_two_person_mode_asks_for_approval():
    preview = type("P", (), {"action_id": s.ACTION_ID, "short_id": "3f2a9c1e", "ticket_id": 42,
                             "action_type": ActionType.AUTO_RESOLVE, "changes": {}})()
    one = s.buttons(rollback_confirm(preview, reason="x"))[ActionId.ROLLBACK_CONFIRM]
    two_blocks = rollback_confirm(preview, reason="x", two_person=True)
    two = s.buttons(two_blocks)[ActionId.ROLLBACK_CONFIRM]
    assert (one["text"]["text"], two["text"]["text"]) == ("Roll back", "Ask for approval")
    assert one["value"] == two["value"]
    assert "another admin or an approver to approve it" in s.all_text(two_blocks)


def _approved_rollback():
    undone = s.action(rolled_back=True, rolled_back_by="UASKER", rolled_back_at=s.NOW,
                      rollback_reason="wrong")
    record = s.action(id=ROLLBACK_ID, action_type=ActionType.ROLLBACK, executed_by="UASKER",
                      rollback_of=s.ACTION_ID, confidence_score=None, agent_reasoning="wrong",
                      action_params={"rolled_back_action_id": str(s.ACTION_ID), "reason": "wrong",
                                     "approved_by": "UAPPROVER", "request_id": 12})
    return undone, record


def test_the_thread_notice_the_done_message_and_history_name_both_people():
    undone, record = _approved_rollback()
    result = RollbackResult(undone, record, s.ticket(), {"status": ("resolved", "new")})

    assert ("An admin <@UASKER> rolled back the bot's AUTO RESOLVE with <@UAPPROVER>'s approval "
            "(reason: wrong).") == rollback_thread_notice(result)[0]
    assert "By <@UASKER> with <@UAPPROVER>'s approval · reason: wrong" in s.all_text(rollback_done(result)[1])
    shown = s.all_text(history_blocks(42, [undone, record]))
    assert "*Rolled back* by <@UASKER> with <@UAPPROVER>'s approval at 2024-05-02 09:30 UTC" in shown
    assert "by <@UASKER> · approved by <@UAPPROVER>" in shown


def test_a_one_person_rollback_names_one_person():
    undone, record = _approved_rollback()
    record.action_params = {"rolled_back_action_id": str(s.ACTION_ID), "reason": "wrong"}
    result = RollbackResult(undone, record, s.ticket(), {})
    assert "approval" not in rollback_thread_notice(result)[0]
    assert "approv" not in s.all_text(history_blocks(42, [undone, record]))


@pytest.mark.parametrize("request_id", [1, 12, 2**31 - 1])
def test_request_values_round_trip(request_id):
    assert parse_request_value(request_value(request_id)) == request_id


@pytest.mark.parametrize("value", ["q=0", "q=012", "q=2147483648", "q=1 ", "t=1", "q=", "q=-1", None, 12,
                                   "q=٣"])
def test_anything_else_is_not_a_request_value(value):
    with pytest.raises(ValueError):
        parse_request_value(value)
