"""No, with a reason: the modal, the words on the reopen notice, in /history and in
/resolution-stats."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.analytics import Comment
from bot.domain.feedback import REASON_LIMIT
from bot.views import (
    ActionId,
    BlockId,
    CallbackId,
    NoticeKind,
    NoticeState,
    feedback_reason_modal,
    history_blocks,
    is_reopen_notice_of,
    parse_feedback_target,
    redraw_team_notice,
    stats_blocks,
    team_notice,
    with_requester_said,
)
from models import ActionType
from tests.support import view_samples as s

LONG = "it still fails <!here> & " * 400


def test_the_modal_is_optional_carries_the_resolution_and_offers_what_was_said():
    modal = feedback_reason_modal(42, person_resolution_id=7, text="no network")

    assert modal["callback_id"] == CallbackId.FEEDBACK_REASON
    assert parse_feedback_target(modal["private_metadata"]) == (42, 7, None)
    [field] = [b for b in modal["blocks"] if b["type"] == "input"]
    assert (field["block_id"], field["optional"]) == (BlockId.FEEDBACK_REASON, True)
    element = field["element"]
    assert (element["action_id"], element["max_length"], element["initial_value"]) == (
        ActionId.FEEDBACK_REASON, REASON_LIMIT, "no network")
    assert "initial_value" not in feedback_reason_modal(42)["blocks"][1]["element"]
    assert parse_feedback_target(feedback_reason_modal(42)["private_metadata"]) == (42, None, None)


def test_the_words_go_above_the_notices_end_escaped_replace_earlier_words_and_survive_a_redraw():
    _, posted = team_notice(s.ticket(), kind=NoticeKind.REOPENED, team="Network", action=s.action())
    assert is_reopen_notice_of(posted, 42, None) and not is_reopen_notice_of(posted, 42, 7)
    assert not is_reopen_notice_of(posted, 43, None)

    said = with_requester_said(posted, "first")
    again = with_requester_said(said, LONG)
    ids = [b.get("block_id") for b in again]
    assert ids.count(BlockId.REQUESTER_SAID) == 1
    assert ids.index(BlockId.REQUESTER_SAID) == ids.index(BlockId.TEAM_ACTIONS) - 1
    text = s.all_text(again)
    assert "first" not in text and "&lt;!here&gt; &amp;" in text and "<!here>" not in text
    s.assert_within_limits(again)
    redrawn = redraw_team_notice(again, ticket_id=42, state=NoticeState(resolved=True, resolved_by="U1"))
    assert BlockId.REQUESTER_SAID in [b.get("block_id") for b in redrawn]
    assert with_requester_said(again, "  ") == posted


def test_a_person_resolutions_reopen_notice_is_named_apart_from_the_bots():
    resolve = s.action(action_type=ActionType.RESOLVE, executed_by="UTEAM1", confidence_score=None)
    _, blocks = team_notice(s.ticket(), kind=NoticeKind.REOPENED, team="Network", action=resolve,
                            person_resolution_id=7)
    assert is_reopen_notice_of(blocks, 42, 7) and not is_reopen_notice_of(blocks, 42, None)
    _, routed = team_notice(s.ticket(), kind=NoticeKind.ROUTED, team="Network", action=s.action())
    assert not is_reopen_notice_of(routed, 42, None)


def test_history_shows_the_words_under_the_latest_reopen_of_that_resolution():
    old = s.action(action_type=ActionType.REOPEN, action_params={"resolution_id": 3},
                   executed_at=datetime(2026, 11, 1, tzinfo=UTC), agent_reasoning="", id=None)
    new = s.action(action_type=ActionType.REOPEN, action_params={"resolution_id": 3},
                   executed_at=datetime(2026, 11, 2, tzinfo=UTC), agent_reasoning="")
    blocks = history_blocks(42, [old, new], said={("resolution_id", 3): "still <b>broken</b>"})
    entries = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert "What didn't work: still &lt;b&gt;broken&lt;/b&gt;" in entries[0]
    assert "What didn't work" not in entries[1]
    assert "What didn't work" not in s.all_text(history_blocks(42, [old, new]))


def test_stats_show_the_latest_comments_within_limits_and_none_when_there_are_none():
    at = datetime(2026, 11, 28, tzinfo=UTC)
    comments = [Comment(ticket_id=n, text=LONG, at=at, by_person=n % 2 == 0) for n in range(1, 6)]
    blocks = stats_blocks(s.stats(), comments=comments)
    text = s.all_text(blocks)
    assert "*Latest comments*" in text and "• #1, about the bot's answer" in text
    assert "• #2, about a person's resolution" in text and "<!here>" not in text
    s.assert_within_limits(blocks)
    assert "Latest comments" not in s.all_text(stats_blocks(s.stats()))
