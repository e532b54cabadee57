"""`to_dicts` serializes our builders' blocks as slack_sdk's `to_dict` does (it skips
only slack_sdk's per-object reflection), and still refuses what Slack would refuse."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import ActionsBlock, DividerBlock, ImageBlock

from bot.views.common import button, context, fields_section, header, section, to_dicts
from bot.views.surveys import followup_digest
from bot.views.ticket import followup_dm

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _blocks():
    return [
        header("Resolution stats"),
        section("*bold* text", block_id="b1",
                accessory=button("Open", "open_action", "v1", style="danger", label="Open it")),
        fields_section([("Team", "Network"), ("Empty", "")], block_id="fields"),
        context("one", "two", block_id="ctx"),
        DividerBlock(),
        ActionsBlock(block_id="acts", elements=[button("Yes", "yes", "1", style="primary"),
                                                button("No", "no", "2")]),
        ImageBlock(image_url="https://example.com/a.png", alt_text="an image"),  # not ours: to_dict
    ]


def test_our_blocks_serialize_exactly_as_slack_sdk_serializes_them():
    assert to_dicts(_blocks()) == [block.to_dict() for block in _blocks()]


def test_a_follow_up_dm_with_the_nps_question_is_the_dicts_slack_sdk_would_give(monkeypatch):
    from bot.views import common

    ticket = SimpleNamespace(ticket_id=7, description="VPN <drops> & more", user_id="U1",
                             assigned_team="Network", category="vpn", issue_type="vpn")
    action = SimpleNamespace(id=uuid.uuid4(), executed_at=NOW - timedelta(days=1),
                             action_params={"steps": ["Reconnect", "Restart"]},
                             action_type="AUTO_RESOLVE", confidence_score=0.9, rolled_back=False)
    item = SimpleNamespace(ticket=ticket, action=action, person=False,
                           resolution=SimpleNamespace(id=3, resolution_confirmed=None,
                                                      satisfaction_score=None))
    drawn = [followup_dm(ticket, action, now=NOW),
             followup_digest([item, item], nps_dm=42, nps_score=8, now=NOW)]
    monkeypatch.setattr(common, "_FAST_CLASSES", frozenset())
    monkeypatch.setattr(common, "_PLANS", {})
    assert drawn == [followup_dm(ticket, action, now=NOW),
                     followup_digest([item, item], nps_dm=42, nps_score=8, now=NOW)]


def test_a_block_past_slacks_limits_is_still_refused():
    value = "x" * 2001  # Slack takes at most 2,000 characters
    with pytest.raises(SlackObjectFormationError):
        to_dicts([ActionsBlock(elements=[button("Go", "go", value)])])
    with pytest.raises(SlackObjectFormationError):
        to_dicts([ActionsBlock(elements=[button(str(n), f"a{n}", "v") for n in range(26)])])
