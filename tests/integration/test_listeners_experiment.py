"""THRESHOLD_EXPERIMENT through Slack: signed slash commands to the real app, real
PostgreSQL and Redis, the fake Slack. Decisions record their arm; /resolution-stats and
the App Home show the running experiment; an admin reads and stops it with
/autonomy experiment (audited, announced); a stranger is refused; the results stay
readable after the stop."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.domain import audit
from bot.workflows.runtime import Runtime
from models import ActionHistory, AuditEvent, ThresholdExperiment
from tests.support.bolt_requests import listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import ADMIN, REQUESTER, STRANGER, VPN, shown, wait_until
from tests.support.harness import ephemeral_answer as _ephemeral
from tests.support.harness import newest_decision as _decided
from tests.support.harness import rows as _all

ALERTS = "C0ALERTS"


@pytest.fixture()
def listener_runtime(settings, pg_url, slack, namespace) -> Runtime:
    """The conftest's runtime with an experiment set and an alerts channel."""
    return Runtime.from_settings(listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL,
                                                   alerts_channel=ALERTS, threshold_experiment="0.75,0.85"),
                                 namespace=namespace)


def test_an_experiment_is_shown_stopped_by_an_admin_and_stays_readable(bolt, slack, committing_factory):
    _ephemeral(bolt.command("/ticket", VPN))
    first = _decided(committing_factory)
    [experiment] = _all(committing_factory, select(ThresholdExperiment))
    assert (first.experiment_id, experiment.arms, experiment.running) == (experiment.id, "0.75,0.85", True)
    assert first.threshold_arm in (0.75, 0.85)

    stats = shown(_ephemeral(bolt.command("/resolution-stats", "7", user=ADMIN)))
    assert "Threshold experiment (THRESHOLD_EXPERIMENT)" in stats
    assert "*Running*: AUTONOMY_THRESHOLD 0.75 vs 0.85" in stats and "Reopen rate" in stats
    assert "not enough data yet (0.75: 0 answered, 0.85: 0; 30 needed in each arm)" in stats

    bolt.event({"type": "app_home_opened", "user": REQUESTER, "channel": "D0HOME", "tab": "home",
                "event_ts": "1732527100.000100"})
    bolt.settled()
    assert "*Running*: AUTONOMY_THRESHOLD 0.75 vs 0.85" in shown(slack.home_view(REQUESTER))

    refused = shown(_ephemeral(bolt.command("/autonomy", "experiment stop", user=STRANGER)))
    assert "Only helpdesk admins can use /autonomy." in refused
    [denied] = _all(committing_factory,
                    select(AuditEvent).where(AuditEvent.event_type == audit.AUTONOMY_DENIED))
    assert denied.detail == {"command": "experiment"}
    assert _all(committing_factory, select(ThresholdExperiment.running)) == [True]

    status = shown(_ephemeral(bolt.command("/autonomy", "experiment", user=ADMIN)))
    assert "Results so far" in status and "`/autonomy experiment stop [reason]` ends it" in status

    stopped = _ephemeral(bolt.command("/autonomy", "experiment stop enough <!channel> data", user=ADMIN))
    assert stopped["text"] == "Threshold experiment stopped."
    said = shown(stopped)
    assert "Final results" in said and f"stopped by <@{ADMIN}>" in said
    assert "enough &lt;!channel&gt; data" in said and "<!channel>" not in said
    [notice] = wait_until(lambda: [c for c in slack.calls("chat.postMessage") if c.args["channel"] == ALERTS],
                          what="the announcement")
    assert f"<@{ADMIN}> stopped the threshold experiment" in shown(notice.args)
    [ended] = _all(committing_factory,
                   select(AuditEvent).where(AuditEvent.event_type == audit.EXPERIMENT_STOPPED))
    assert (ended.actor_id, ended.detail["cause"], ended.detail["reason"]) == (
        ADMIN, "admin", "enough <!channel> data")

    # The results stay readable; the stats no longer show a running experiment.
    after = shown(_ephemeral(bolt.command("/autonomy", "experiment status", user=ADMIN)))
    assert "Final results" in after and "*Stopped*" in after
    assert "Threshold experiment" not in shown(_ephemeral(bolt.command("/resolution-stats", "7", user=ADMIN)))
    again = _ephemeral(bolt.command("/autonomy", "experiment stop", user=ADMIN))
    assert again["text"] == "No threshold experiment is running. Nothing changed."

    # THRESHOLD_EXPERIMENT is still set, but an admin's stop holds: no arm any more.
    _ephemeral(bolt.command("/ticket", VPN + " again"))
    later = wait_until(lambda: [a for a in _all(committing_factory, select(ActionHistory))
                                if a.ticket_id != first.ticket_id] or None, what="the second decision")
    assert (later[0].experiment_id, later[0].threshold_arm) == (None, None)
    assert len(_all(committing_factory, select(ThresholdExperiment))) == 1


def test_a_wrong_experiment_subcommand_shows_the_usage(bolt):
    said = shown(_ephemeral(bolt.command("/autonomy", "experiment restart", user=ADMIN)))
    assert "`/autonomy experiment stop [reason]`" in said
