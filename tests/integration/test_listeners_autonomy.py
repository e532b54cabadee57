"""/autonomy in process: signed slash commands to the real app, real PostgreSQL and
Redis, the fake Slack. An admin pauses, checks the status, resumes and shadows; each
change is audited and announced in ALERTS_CHANNEL; tickets opened meanwhile go to
people; App Home shows the mode and /resolution-stats the shadow decisions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.domain import audit
from bot.workflows.runtime import Runtime
from models import AuditEvent, AutonomyState, PersonResolution, ShadowDecision
from tests.support.bolt_requests import listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import ADMIN, REQUESTER, STRANGER, VPN, shown, wait_until
from tests.support.harness import ephemeral_answer as _ephemeral
from tests.support.harness import newest_decision as _decided
from tests.support.harness import rows as _all

ALERTS = "C0ALERTS"


@pytest.fixture()
def listener_runtime(settings, pg_url, slack, namespace) -> Runtime:
    """The conftest's runtime, with an alerts channel to announce changes in."""
    return Runtime.from_settings(listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL,
                                                   alerts_channel=ALERTS), namespace=namespace)


def test_a_stranger_is_refused_and_the_refusal_audited(bolt, committing_factory):
    said = shown(_ephemeral(bolt.command("/autonomy", "pause because", user=STRANGER)))
    assert "Only helpdesk admins can use /autonomy." in said
    [denied] = _all(committing_factory,
                    select(AuditEvent).where(AuditEvent.event_type == audit.AUTONOMY_DENIED))
    assert (denied.actor_id, denied.detail) == (STRANGER, {"command": "pause"})
    assert _all(committing_factory, select(AutonomyState)) == []
    assert "Only helpdesk admins" in shown(_ephemeral(bolt.command("/autonomy", "", user=REQUESTER)))


def test_an_unknown_subcommand_shows_the_usage(bolt, committing_factory):
    assert "Usage: `/autonomy status`" in shown(_ephemeral(bolt.command("/autonomy", "stop", user=ADMIN)))


def test_pause_status_resume_through_slack(bolt, slack, committing_factory):
    said = _ephemeral(bolt.command("/autonomy", "pause VPN rollout <!channel> tonight", user=ADMIN))
    assert said["text"] == "Autonomy paused." and "VPN rollout" in shown(said)

    [notice] = slack.wait_for("chat.postMessage")
    assert notice.args["channel"] == ALERTS
    announced = shown(notice.args)
    assert f"<@{ADMIN}> paused the bot's autonomy" in announced and "it was on" in announced
    assert "VPN rollout &lt;!channel&gt; tonight" in announced and "<!channel>" not in announced
    [changed] = _all(committing_factory,
                     select(AuditEvent).where(AuditEvent.event_type == audit.AUTONOMY_CHANGED))
    assert (changed.actor_id, changed.detail["mode"]) == (ADMIN, "paused")

    _ephemeral(bolt.command("/ticket", VPN))
    paused = _decided(committing_factory)
    assert paused.action_type == "ESCALATE" and not paused.autonomous
    # The requester hears that a person decides, not the admin's reason.
    answer = wait_until(lambda: [c for c in slack.calls("chat.postMessage") if c.args["channel"] != ALERTS
                                 and "autonomy is paused" in shown(c.args)], what="the triage answer")
    assert "VPN rollout" not in shown(answer[0].args)
    assert paused.action_params["suggestion"]["action_type"] == "AUTO_RESOLVE"

    status = shown(_ephemeral(bolt.command("/autonomy", "status", user=ADMIN)))
    assert "*Paused*" in status and f"Set by <@{ADMIN}>" in status
    assert "50 per 1 minute" in status and "Used" in status and "Left" in status
    assert "auto resolve, escalate, assign to team, request clarification" in status

    again = _ephemeral(bolt.command("/autonomy", "pause", user=ADMIN))
    assert again["text"] == "Autonomy is already paused. Nothing changed."

    assert _ephemeral(bolt.command("/autonomy", "resume", user=ADMIN))["text"] == "Autonomy resumed."
    _ephemeral(bolt.command("/ticket", VPN))
    resumed = _decided(committing_factory)
    assert resumed.action_type == "AUTO_RESOLVE" and resumed.autonomous
    bolt.settled()
    alerts = [c for c in slack.calls("chat.postMessage") if c.args["channel"] == ALERTS]
    assert len(alerts) == 2 and f"<@{ADMIN}> resumed the bot's autonomy" in shown(alerts[1].args)


def test_app_home_shows_the_mode(bolt, slack, committing_factory):
    _ephemeral(bolt.command("/autonomy", "shadow trial week", user=ADMIN))
    for user in (REQUESTER, ADMIN):
        bolt.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
                    "event_ts": "1732527100.000100"})
    bolt.settled()
    home = shown(slack.home_view(REQUESTER))
    assert "*Autonomy*: *Shadow*" in home and "trial week" not in home
    admins = shown(slack.home_view(ADMIN))
    assert "*Autonomy*: *Shadow*" in admins and "trial week" in admins and f"<@{ADMIN}>" in admins


def test_shadow_decisions_show_in_the_stats_beside_what_people_did(bolt, slack, committing_factory):
    _ephemeral(bolt.command("/autonomy", "shadow", user=ADMIN))
    _ephemeral(bolt.command("/ticket", VPN))
    action = _decided(committing_factory)
    assert action.action_type == "ESCALATE" and not action.autonomous
    [shadow] = _all(committing_factory, select(ShadowDecision))
    with committing_factory.begin() as session:
        session.add(PersonResolution(ticket_id=shadow.ticket_id, resolved_by="UHELPER", team=shadow.team,
                                     note="done", resolution_confirmed=True))
    stats = shown(_ephemeral(bolt.command("/resolution-stats", "7", user=ADMIN)))
    assert "Shadow mode: what the bot would have done* (1 tickets)" in stats
    assert "auto resolve" in stats
