"""Safety of every builder: people's text never pings or links, and Slack's limits hold.

Each builder is fed the same text in every place where people or an agent can
write (the ticket, steps, questions, reasoning, reasons, team names, error texts).
The only `<` allowed in the output is a mention we wrote of a user id we know.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.analytics import ActionTypeStats, PeopleStats, PeopleTeamStats, TeamStats
from bot.domain.autonomy import Change, ShadowComparison, ShadowRow, Switch
from bot.domain.ratelimit import CapWindow
from bot.domain.rollback import RollbackPreview
from bot.views import (
    NoticeKind,
    NoticeState,
    action_thread_message,
    answered_person_resolution_message,
    answered_resolution_message,
    error_message,
    escape,
    followup_dm,
    history_blocks,
    home_view,
    person_followup_dm,
    person_resolution_message,
    reasoning_message,
    redraw_team_notice,
    resolution_message,
    resolve_modal,
    rollback_confirm,
    rollback_done,
    rollback_thread_notice,
    stats_blocks,
    taken_notice,
    team_notice,
    ticket_received,
    truncate,
)
from bot.views.autonomy import autonomy_announcement, autonomy_changed, autonomy_status
from bot.views.escape import from_slack_text
from models import ActionType, Actor, AutonomyMode, TicketStatus
from tests.support import view_samples as s

OUR_MENTIONS = re.compile(r"<@(UREQ1|UADMIN1|UTEAM1)>")
DANGEROUS = ["<!channel>", "<!here>", "<!everyone>", "<@U123>", "<https://evil|click>",
             "<#C123>", "<!subteam^S1>", "&", "<", ">", "&lt;", "&amp;", "`", "```", "*",
             "\n", "> ", "é", "🙂", ";s=5", "t=1"]
people_text = st.lists(st.sampled_from(DANGEROUS) | st.text(max_size=20), max_size=40).map("".join)


def _outputs(text: str) -> list[tuple[str, Any]]:
    """Every builder's output, with `text` wherever people or an agent write."""
    ticket = s.ticket(description=text, assigned_team=text, user_name=text)
    agent_params = {
        "team": text, "steps": [text, text], "estimated_time": text, "band": text,
        "priority": text, "questions": [text], "suggested_answer": True,
    }
    auto = s.action(action_params=agent_params, agent_reasoning=text)
    rolled_back = s.action(
        action_params=agent_params, agent_reasoning=text, rolled_back=True,
        rolled_back_by="UADMIN1", rolled_back_at=s.NOW, rollback_reason=text,
    )
    kinds = [
        s.action(action_type=kind, action_params=agent_params, agent_reasoning=text)
        for kind in (ActionType.ESCALATE, ActionType.ASSIGN_TO_TEAM, ActionType.REQUEST_CLARIFICATION, text)
    ]
    triage = s.action(
        action_type=ActionType.ESCALATE, confidence_score=None, executed_by=Actor.SYSTEM,
        action_params={**agent_params, "triage": True, "reason": text,
                       "suggestion": {"action_type": text, "confidence": 0.5}},
    )
    preview = RollbackPreview(
        action_id=s.ACTION_ID, short_id="3f2a9c1e", ticket_id=42, action_type=ActionType.AUTO_RESOLVE,
        executed_at=s.NOW, confidence=0.9, reasoning=text,
        changes={"status": (TicketStatus.RESOLVED, TicketStatus.NEW), "assigned_team": (text, text)},
    )
    result = SimpleNamespace(
        short_id="3f2a9c1e", ticket_id=42, action_type=ActionType.AUTO_RESOLVE, admin_id="UADMIN1",
        reason=text, restored={"status": (text, text), "assigned_team": (text, None)},
    )
    stats = s.stats(
        by_action_type=(ActionTypeStats(text, 1, 1, 0.5, 0),),
        by_team=(TeamStats(text, 1, 1, 1, 0, 1.0, 5.0),),
        people=PeopleStats(taken=2, resolutions=1, confirmed=1, success_rate=1.0, average_rating=5.0,
                           ratings=1),
        people_by_team=(PeopleTeamStats(text, 1, 1, 0, 1.0, 5.0),),
    )
    person = s.person_resolution(team=text, note=text, resolved_by="UTEAM1")
    resolve = s.action(action_type=ActionType.RESOLVE, executed_by="UTEAM1", agent_reasoning=text,
                       confidence_score=None, action_params={"team": text})
    notices = [
        (f"team_{kind}", team_notice(ticket, kind=kind, team=text, action=a, reason=text,
                                     state=NoticeState(holder="UTEAM1")))
        for kind, a in ((NoticeKind.ROUTED, kinds[1]), (NoticeKind.ESCALATED, kinds[0]),
                        (NoticeKind.TRIAGE, triage), (NoticeKind.REOPENED, auto),
                        (NoticeKind.REOPENED, resolve), (NoticeKind.ROLLED_BACK, rolled_back),
                        (NoticeKind.ROLLED_BACK, None))
    ]
    _, posted = notices[0][1]
    notices.append(("team_resolved", redraw_team_notice(posted, ticket_id=42, state=NoticeState(
        holder="UTEAM1", resolved=True, resolved_by="UTEAM1", note=text))))
    history = [auto, rolled_back, *kinds, triage,
               s.action(id=uuid.uuid4(), executed_by=text, agent_reasoning=text)]
    outputs = [
        ("ticket_received", ticket_received(42, text)),
        ("resolution_message", resolution_message(ticket, auto, ticket_text=text)),
        ("answered", answered_resolution_message(
            ticket, auto, s.resolution(resolution_confirmed=False))),
        ("answered_withdrawn", answered_resolution_message(ticket, rolled_back, None)),
        ("followup_dm", followup_dm(ticket, auto, now=s.NOW + timedelta(days=1))),
        ("triage", action_thread_message(ticket, triage)),
        ("reasoning", reasoning_message(rolled_back)),
        *notices,
        ("resolve_modal", resolve_modal(ticket)),
        ("taken", taken_notice(ticket, holder="UTEAM1", team=text)),
        ("person_resolution", person_resolution_message(ticket, person)),
        ("person_answered", answered_person_resolution_message(
            ticket, s.person_resolution(team=text, note=text, resolution_confirmed=False,
                                        satisfaction_score=2))),
        ("person_withdrawn", answered_person_resolution_message(ticket, person, withdrawn=True)),
        ("person_followup", person_followup_dm(ticket, person, now=s.NOW)),
        ("rollback_confirm", rollback_confirm(preview, reason=text)),
        ("rollback_done", rollback_done(result)),
        ("rollback_thread_notice", rollback_thread_notice(result)),
        ("history", history_blocks(42, history)),
        ("error", error_message(text)),
        ("stats", stats_blocks(stats)),
        ("home", home_view(stats, is_admin=True)),
        *_autonomy_outputs(text, stats),
    ]
    outputs += [(f"thread_{a.action_type[:20]}", action_thread_message(ticket, a)) for a in kinds]
    return outputs


def _autonomy_outputs(text: str, stats: Any) -> list[tuple[str, Any]]:
    """The autonomy switch's views, with the admin's reason as `text`."""
    before = Switch(AutonomyMode.ON)
    after = Switch(AutonomyMode.PAUSED, reason=text, changed_by="UADMIN1", changed_at=s.NOW)
    change = Change(before, after)
    windows = [CapWindow("50 per 1 minute", 50, 3, 47), CapWindow("100 per 1 hour", 100, 3, 97)]
    shadow = ShadowComparison(7, (ShadowRow(ActionType.AUTO_RESOLVE, 3, 2, 1, 1),))
    return [
        ("autonomy_status", autonomy_status(after, windows, ["AUTO_RESOLVE"])),
        ("autonomy_status_down", autonomy_status(after, None, [])),
        ("autonomy_changed", autonomy_changed(change)),
        ("autonomy_unchanged", autonomy_changed(Change(after, after))),
        ("autonomy_announcement", autonomy_announcement(change)),
        ("home_autonomy", home_view(stats, is_admin=True, autonomy=after)),
        ("stats_shadow", stats_blocks(stats, shadow=shadow)),
    ]


def test_the_autonomy_views_say_what_an_admin_needs():
    paused = Switch(AutonomyMode.PAUSED, reason="freeze", changed_by="UADMIN1", changed_at=s.NOW)
    windows = [CapWindow("50 per 1 minute", 50, 3, 47)]
    status = s.all_text(autonomy_status(paused, windows, ["AUTO_RESOLVE", "ESCALATE"])[1])
    assert "*Paused*" in status and "<@UADMIN1>" in status and "2024-05-02 09:30 UTC" in status
    assert "50 per 1 minute     3    47" in status and "auto resolve, escalate" in status
    down = s.all_text(autonomy_status(paused, None, [])[1])
    assert "cannot be read right now" in down and "(AUTONOMOUS_ACTIONS): none" in down
    text, blocks = autonomy_announcement(Change(Switch(AutonomyMode.ON), paused))
    assert text == "Autonomy paused (was on)"
    assert "<@UADMIN1> paused the bot's autonomy* (it was on)" in s.all_text(blocks)
    shadow = Switch(AutonomyMode.SHADOW, changed_by="UADMIN1", changed_at=s.NOW)
    assert "switched the bot to shadow mode* (it was paused)" in s.all_text(
        autonomy_announcement(Change(paused, shadow))[1])
    assert "Shadow mode" not in s.all_text(stats_blocks(s.stats(), shadow=ShadowComparison(7)))
    told = Change(Switch(AutonomyMode.ON), paused)
    assert "Announced in the alerts channel" in s.all_text(autonomy_changed(told)[1])
    assert "no ALERTS_CHANNEL" in s.all_text(autonomy_changed(told, announced=False)[1])


def _blocks_of(output: Any) -> list[dict]:
    if isinstance(output, dict):
        return output["blocks"]
    if isinstance(output, tuple):
        text, blocks = output
        assert isinstance(text, str) and text
        return blocks
    return output


def _assert_safe(name: str, output: Any) -> None:
    serialized = OUR_MENTIONS.sub("", s.dumped(output))
    assert "<" not in serialized, f"{name} lets a raw '<' through: {serialized[:300]}"


def test_the_example_ticket_text_is_escaped_everywhere():
    for name, output in _outputs(s.EVIL):
        _assert_safe(name, output)
        serialized = s.dumped(output)
        for raw in ("<!channel>", "<@U123>", "<https://evil|click>"):
            assert raw not in serialized, name
    shown = s.all_text(resolution_message(s.ticket(), s.action(), ticket_text=s.EVIL)[1])
    assert "&lt;!channel&gt; hi &lt;@U123&gt; &amp; &lt;https://evil|click&gt;" in shown


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people_text)
def test_no_builder_lets_peoples_text_ping_or_link(text):
    for name, output in _outputs(text):
        _assert_safe(name, output)
        s.assert_within_limits(_blocks_of(output), max_blocks=100 if name == "home" else 50)


@pytest.mark.parametrize("unit", ["x", "<!channel>", "&", "é🙂", "word "])
def test_ten_thousand_characters_still_give_valid_blocks(unit):
    text = (unit * 10_000)[:10_000]
    for name, output in _outputs(text):
        _assert_safe(name, output)
        blocks = _blocks_of(output)
        s.assert_within_limits(blocks, max_blocks=100 if name == "home" else 50)
        if isinstance(output, tuple):
            assert len(output[0]) <= 3000


def test_escape_follows_slacks_rules():
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape("&lt;") == "&amp;lt;"
    assert escape("plain") == "plain"


def test_slacks_text_is_decoded_once_and_only_its_three_entities():
    assert from_slack_text("&lt;b&gt;x&lt;/b&gt; &amp; y") == "<b>x</b> & y"
    assert from_slack_text("&amp;lt;") == "&lt;"  # a person typed "&lt;"
    assert from_slack_text("&quot; &#39; &nbsp;") == "&quot; &#39; &nbsp;"
    # Slack's own markup arrives unencoded and is left as it is.
    assert from_slack_text("<@U123> <!channel> <https://x|y> &") == "<@U123> <!channel> <https://x|y> &"


@given(st.text())
def test_decoding_undoes_slacks_escaping_of_anything_typed(typed):
    assert from_slack_text(escape(typed)) == typed


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("hello", 5, "hello"),
        ("hello world", 6, "hello…"),
        ("ab&amp;cd", 5, "ab…"),
        ("ab&lt;cd", 6, "ab…"),
        ("ab&lt;cd", 7, "ab&lt;…"),
        ("x", 1, "x"),
        ("xy", 1, "…"),
    ],
)
def test_truncate_adds_an_ellipsis_and_never_splits_an_entity(text, limit, expected):
    assert truncate(text, limit) == expected


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_truncate_respects_the_limit(text, limit):
    escaped = escape(text)
    cut = truncate(escaped, limit)
    assert len(cut) <= limit
    if cut != escaped:
        head = cut.removesuffix("…")
        assert cut.endswith("…") and escaped.startswith(head)
        # What is kept ends on a whole entity, never "&am".
        assert re.search(r"&[a-z]{0,3}$", head) is None
