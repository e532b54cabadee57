"""What admins see: rollback confirm and result, history, errors."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

from bot.domain.rollback import RollbackPreview, RollbackResult
from bot.views import (
    ActionId,
    error_message,
    history_blocks,
    parse_rollback_value,
    rollback_confirm,
    rollback_done,
    rollback_thread_notice,
)
from models import ActionType, TicketStatus
from tests.support import view_samples as s


def _preview(**fields) -> RollbackPreview:
    values = {
        "action_id": s.ACTION_ID,
        "short_id": "3f2a9c1e",
        "ticket_id": 42,
        "action_type": ActionType.AUTO_RESOLVE,
        "executed_at": s.NOW - timedelta(days=1),
        "confidence": 0.92,
        "reasoning": "Matched KB article 'vpn'.",
        "changes": {
            "status": (TicketStatus.RESOLVED, TicketStatus.NEW),
            "resolved_at": ("2024-05-01T09:30:00+00:00", None),
        },
    }
    values.update(fields)
    return RollbackPreview(**values)


def test_rollback_confirm_shows_the_action_and_the_diff():
    blocks = rollback_confirm(_preview(), reason="wrong fix")
    shown = s.all_text(blocks)
    for expected in ("3f2a9c1e", "AUTO RESOLVE", "#42", "92%", "Matched KB article", "wrong fix"):
        assert expected in shown
    assert "`status`: resolved → new" in shown
    assert "`resolved_at`: 2024-05-01 09:30 UTC → _(none)_" in shown
    found = s.buttons(blocks)
    confirm = found[ActionId.ROLLBACK_CONFIRM]
    assert confirm["style"] == "danger"
    assert parse_rollback_value(confirm["value"]) == (s.ACTION_ID, "wrong fix")
    assert ActionId.ROLLBACK_CANCEL in found
    s.assert_within_limits(blocks)


def test_rollback_confirm_duck_types_a_diff_attribute():
    preview = SimpleNamespace(
        action_id=s.ACTION_ID, short_id="3f2a9c1e", ticket_id=42, action_type=ActionType.ESCALATE,
        executed_at=None, confidence=None, reasoning="", diff={"assigned_team": ("Security", None)},
    )
    shown = s.all_text(rollback_confirm(preview))
    assert "`assigned_team`: Security → _(none)_" in shown
    assert "no reason given" in shown


def test_rollback_confirm_with_nothing_to_change_says_so():
    shown = s.all_text(rollback_confirm(_preview(changes={})))
    assert "Nothing on the ticket changes" in shown


def test_a_long_reason_still_fits_the_button():
    blocks = rollback_confirm(_preview(), reason="x" * 5000)
    s.assert_within_limits(blocks)
    _, reason = parse_rollback_value(s.buttons(blocks)[ActionId.ROLLBACK_CONFIRM]["value"])
    assert reason.endswith("…")


def _flat_result(**fields):
    values = {
        "short_id": "3f2a9c1e",
        "ticket_id": 42,
        "action_type": ActionType.AUTO_RESOLVE,
        "admin_id": "UADMIN1",
        "reason": "the fix was wrong",
        "restored": {"status": (TicketStatus.RESOLVED, TicketStatus.NEW)},
    }
    values.update(fields)
    return SimpleNamespace(**values)


def test_rollback_done_tells_the_admin_what_was_restored():
    text, blocks = rollback_done(_flat_result())
    assert text == "Rolled back AUTO RESOLVE 3f2a9c1e on ticket #42."
    shown = s.all_text(blocks)
    assert "`status`: resolved → new" in shown
    assert "<@UADMIN1>" in shown and "the fix was wrong" in shown
    s.assert_within_limits(blocks)


def test_rollback_notices_accept_the_services_result():
    action = s.action(
        rolled_back=True, rolled_back_by="UADMIN1", rolled_back_at=s.NOW, rollback_reason="<!here> oops"
    )
    record = s.action(id=uuid.uuid4(), action_type=ActionType.ROLLBACK, executed_by="UADMIN1")
    result = RollbackResult(action, record, s.ticket(), {"status": (TicketStatus.RESOLVED, TicketStatus.NEW)})
    text, blocks = rollback_thread_notice(result)
    assert text == "An admin <@UADMIN1> rolled back the bot's AUTO RESOLVE (reason: &lt;!here&gt; oops)."
    assert "Ticket #42 is new again." in s.all_text(blocks)
    assert "<!" not in s.dumped(blocks)
    done_text, _ = rollback_done(result)
    assert "3f2a9c1e" in done_text


def test_thread_notice_without_reason():
    text, _ = rollback_thread_notice(_flat_result(reason="  "))
    assert "(reason: no reason given)" in text


def test_a_crafted_admin_id_is_not_made_a_mention():
    text, _ = rollback_thread_notice(_flat_result(admin_id="!channel"))
    assert "<" not in text


def test_history_marks_rolled_back_actions():
    rows = [
        s.action(),
        s.action(
            id=uuid.uuid4(), action_type=ActionType.ESCALATE, confidence_score=0.4, executed_at=s.NOW,
            rolled_back=True, rolled_back_by="UADMIN1", rolled_back_at=s.NOW + timedelta(hours=1),
            rollback_reason="not critical",
        ),
        s.action(
            id=uuid.uuid4(), action_type=ActionType.ROLLBACK, confidence_score=None, executed_by="UADMIN1",
            executed_at=s.NOW + timedelta(hours=1), rollback_of=s.ACTION_ID,
            agent_reasoning="not critical",
        ),
    ]
    blocks = history_blocks(42, rows)
    assert blocks[0]["type"] == "header" and "#42" in blocks[0]["text"]["text"]
    entries = [b["text"]["text"] for b in blocks[1:]]
    assert len(entries) == 3
    # Newest first.
    assert entries[0].startswith("*ROLLBACK*") and "by <@UADMIN1>" in entries[0]
    assert "undoes `3f2a9c1e`" in entries[0]
    assert entries[1].startswith("*ESCALATE*") and "40%" in entries[1]
    assert "*Rolled back* by <@UADMIN1> at 2024-05-02 10:30 UTC (not critical)" in entries[1]
    assert entries[2].startswith("*AUTO RESOLVE* `3f2a9c1e` · 92% · by autonomous agent")
    assert "Rolled back" not in entries[2]
    s.assert_within_limits(blocks)


def test_history_shows_the_conversation_in_the_timeline_escaped_with_who_and_when():
    asked = s.action(action_type=ActionType.REQUEST_CLARIFICATION, executed_at=s.NOW)
    reply = SimpleNamespace(kind="reply", author_id="UREQ1", text="It says <!channel> *error* 809",
                            created_at=s.NOW + timedelta(minutes=5))
    detail = SimpleNamespace(kind="detail", author_id="UREQ1", text="Also on wifi\n<@U0BOSS> knows",
                             created_at=s.NOW + timedelta(minutes=20))
    resolved = s.action(id=uuid.uuid4(), executed_at=s.NOW + timedelta(minutes=10))
    blocks = history_blocks(42, [asked, resolved], conversation=[reply, detail])
    entries = [b["text"]["text"] for b in blocks[1:]]
    assert entries[0] == (":speech_balloon: <@UREQ1> added detail from App Home · 2024-05-02 09:50 UTC\n"
                          "> Also on wifi\n> &lt;@U0BOSS&gt; knows")
    assert entries[1].startswith("*AUTO RESOLVE*")
    assert entries[2] == (":speech_balloon: <@UREQ1> replied in the thread · 2024-05-02 09:35 UTC\n"
                          "> It says &lt;!channel&gt; *error* 809")
    assert entries[3].startswith("*REQUEST CLARIFICATION*")
    assert len(entries) == 4


def test_history_cuts_at_fifty_blocks():
    rows = [
        s.action(id=uuid.uuid4(), executed_at=s.NOW + timedelta(minutes=n), agent_reasoning="r" * 5000)
        for n in range(120)
    ]
    blocks = history_blocks(42, rows)
    assert len(blocks) == 50
    assert blocks[-1]["type"] == "context"
    assert blocks[-1]["elements"][0]["text"] == "… and 72 older actions"
    # The newest are the ones shown.
    assert "2024-05-02 11:29 UTC" in blocks[1]["text"]["text"]
    s.assert_within_limits(blocks)


def test_history_of_exactly_forty_nine_rows_is_not_cut():
    rows = [s.action(id=uuid.uuid4()) for _ in range(49)]
    blocks = history_blocks(42, rows)
    assert len(blocks) == 50
    assert "older" not in s.all_text(blocks)


def test_empty_history():
    blocks = history_blocks(9, [])
    assert "No actions are recorded for ticket #9." in s.all_text(blocks)


def test_error_message_has_a_warning_and_escapes():
    blocks = error_message("'<@U1>' is not an action id")
    assert blocks[0]["text"]["text"] == ":warning: '&lt;@U1&gt;' is not an action id"
    s.assert_within_limits(blocks)
