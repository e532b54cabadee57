"""The follow-up DM that carries several resolutions and the NPS question: ids Slack
accepts, buttons that parse back strictly, and the settings that switch them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.core.settings import Settings
from bot.views import fits, followup_digest, nps_value, parse_nps
from bot.views.ids import feedback_value, person_feedback_value

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _item(n: int, *, person: bool = False, **answers):
    resolution = SimpleNamespace(**{"id": n, "resolution_confirmed": None, "satisfaction_score": None,
                                    "created_at": NOW - timedelta(days=1), "resolved_by": "UPERSON",
                                    "team": "Network", "note": "Replaced the cable.", **answers})
    action = SimpleNamespace(id=uuid.uuid4(), executed_at=NOW - timedelta(days=1),
                             action_params={"steps": ["Restart the router."]}, confidence_score=0.9,
                             rolled_back=False)
    ticket = SimpleNamespace(ticket_id=100 + n, description="VPN drops", assigned_team="Network")
    return SimpleNamespace(ticket=ticket, action=action, resolution=resolution, person=person)


def _values(blocks, action_id):
    return [e["value"] for b in blocks for e in b.get("elements", []) if e.get("action_id") == action_id]


def test_each_resolution_keeps_its_own_buttons_and_block_ids_stay_unique():
    text, blocks = followup_digest([_item(1), _item(2, person=True), _item(3, resolution_confirmed=True)],
                                   nps_dm=7, now=NOW)
    assert text.startswith("Checking in on 3 of your tickets")
    assert _values(blocks, "feedback_yes") == [feedback_value(101), person_feedback_value(102, 2)]
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids)) and "feedback" in ids  # the first keeps today's ids
    assert _values(blocks, "nps_0") == [nps_value(7, 0)] and len(_values(blocks, "nps_10")) == 1
    assert fits([_item(n) for n in range(5)], nps_dm=7, now=NOW)
    assert not fits([_item(n) for n in range(8)], nps_dm=7, now=NOW)


def test_one_resolution_without_nps_is_todays_dm():
    text, blocks = followup_digest([_item(1)], now=NOW)
    assert text.startswith("Yesterday I suggested a fix for ticket #101")
    assert not any(b["type"] == "divider" for b in blocks)


@pytest.mark.parametrize(("action_id", "value"), [
    ("nps_9", "o=7;n=8"), ("nps_11", "o=7;n=11"), ("nps_1", "o=07;n=1"), ("nps_1", "o=7;n=1;x"),
    ("rate_1", "o=7;n=1"), ("nps_1", "o=99999999999;n=1"),
])
def test_a_tampered_nps_button_is_refused(action_id, value):
    with pytest.raises(ValueError):
        parse_nps(action_id, value)
    assert parse_nps("nps_10", "o=7;n=10") == (7, 10)


def test_survey_settings_read_durations_and_off_and_refuse_the_rest():
    settings = Settings(survey_cooldown="off", nps_interval="30d")
    assert (settings.survey_cooldown, settings.nps_interval) == (None, timedelta(days=30))
    assert Settings().survey_cooldown == timedelta(days=7) and Settings().nps_interval == timedelta(days=90)
    assert Settings(survey_cooldown="0").survey_cooldown is None
    with pytest.raises(ValueError, match="expected a duration such as 7d, 24h or 30m, or off"):
        Settings(nps_interval="quarterly")
