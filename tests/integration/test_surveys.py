"""Survey fatigue and NPS, as the requester lives them: a second follow-up inside
SURVEY_COOLDOWN is folded into the DM they already have (no second DM), each
resolution in it still answers for itself; after the cooldown a new DM; the NPS
question rides on a DM once per NPS_INTERVAL, its answer stored once and shown in
the stats. Time is moved by passing the delivery job's clock (as the job's tests do)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.settings import load_settings
from bot.delivery import outbox
from bot.delivery.slack_client import make_web_client
from bot.domain.surveys import Surveys
from bot.sandbox.standin import SlackStandIn
from bot.views import ActionId, feedback_value, nps_action_id, nps_value
from models import NpsAnswer, OutboxPurpose, SlackOutbox, TicketResolution, transaction
from tests.support.factories import make_action
from tests.support.harness import REQUESTER, shown

DAY = timedelta(hours=24)
TTL = timedelta(minutes=2)
SURVEYS = Surveys(cooldown=7 * DAY, nps_interval=90 * DAY)
NO_NPS = Surveys(cooldown=7 * DAY, nps_interval=None)
# Recent enough that the clicks' real clock and the job's moved one agree on order.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


def _client(fake, timeout=2):
    return make_web_client(load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                                         slack_bot_token=fake.token), timeout=timeout)


def _resolved(factory, *, at, user="UREQ") -> int:
    with transaction(factory) as session:
        return make_action(session, user_id=user, now=at, followup_delay=DAY).ticket_id


def _deliver(factory, client, at, surveys=SURVEYS, **kwargs) -> int:
    return outbox.deliver(factory, client, ttl=TTL, now=at, surveys=surveys, **kwargs)


def _posts(fake):
    return [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]


def _values(message, action_id) -> list[str]:
    return [e["value"] for b in message["blocks"] for e in b.get("elements", [])
            if e.get("action_id") == action_id]


def _rows(factory) -> list[SlackOutbox]:
    with transaction(factory) as session:
        return session.scalars(select(SlackOutbox).where(SlackOutbox.purpose == OutboxPurpose.FOLLOWUP)
                               .order_by(SlackOutbox.id)).all()


def test_a_second_follow_up_inside_the_cooldown_is_folded_into_the_dm_not_a_second_dm(racing_factory, fake):
    client = _client(fake)
    first = _resolved(racing_factory, at=T0)
    assert _deliver(racing_factory, client, T0 + DAY, NO_NPS) == 1
    second = _resolved(racing_factory, at=T0 + 2 * DAY)
    assert _deliver(racing_factory, client, T0 + 3 * DAY, NO_NPS) == 1

    [post] = _posts(fake)  # one DM, no notification for the second
    updates = [c for c in fake.calls("chat.update") if c.outcome == "ok"]
    assert updates and {u.args["ts"] for u in updates} == {post.response["ts"]}
    [dm] = fake.messages("UREQ")
    assert _values(dm, ActionId.FEEDBACK_YES) == [feedback_value(first), feedback_value(second)]
    assert "Checking in on 2 of your tickets" in dm["text"]
    block_ids = [b["block_id"] for b in dm["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))  # Slack refuses duplicates
    head, folded = _rows(racing_factory)
    assert (folded.status, folded.folded_into, folded.message_ts) == ("sent", head.id, head.message_ts)
    with transaction(racing_factory) as session:
        assert all(r.followup_sent_at for r in session.scalars(select(TicketResolution)))


def test_after_the_cooldown_a_new_dm_and_with_the_cooldown_off_one_dm_each(committing_factory, fake):
    client = _client(fake)
    _resolved(committing_factory, at=T0)
    _deliver(committing_factory, client, T0 + DAY, NO_NPS)
    _resolved(committing_factory, at=T0 + 8 * DAY)
    _deliver(committing_factory, client, T0 + 9 * DAY, NO_NPS)
    assert len(_posts(fake)) == 2 and not fake.calls("chat.update")
    # SURVEY_COOLDOWN=off: every resolution its own DM, even the next day.
    _resolved(committing_factory, at=T0 + 9 * DAY)
    _deliver(committing_factory, client, T0 + 10 * DAY, Surveys(cooldown=None, nps_interval=None))
    assert len(_posts(fake)) == 3


def test_follow_ups_due_together_go_out_as_one_dm_others_people_get_their_own(committing_factory, fake):
    client = _client(fake)
    tickets = [_resolved(committing_factory, at=T0) for _ in range(3)]
    other = _resolved(committing_factory, at=T0, user="UOTHER")
    assert _deliver(committing_factory, client, T0 + DAY, NO_NPS) == 4
    assert sorted(p.args["channel"] for p in _posts(fake)) == ["UOTHER", "UREQ"]
    [dm] = fake.messages("UREQ")
    assert _values(dm, ActionId.FEEDBACK_YES) == [feedback_value(t) for t in tickets]
    [theirs] = fake.messages("UOTHER")
    assert _values(theirs, ActionId.FEEDBACK_YES) == [feedback_value(other)]


def test_two_job_passes_at_once_send_one_dm(committing_factory, fake):
    # Two follow-ups of one person, claimed by two senders at once (one row each), with
    # Slack slow over the DM: the second waits for the first's DM and folds into it.
    _resolved(committing_factory, at=T0)
    _resolved(committing_factory, at=T0)
    fake.delay("chat.postMessage", 1.0)
    client = _client(fake, timeout=10)
    go = threading.Barrier(2)
    sent: list[int] = []

    def sender():
        go.wait()
        sent.append(_deliver(committing_factory, client, T0 + DAY, NO_NPS, limit=1))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sent) == [1, 1]
    assert len(_posts(fake)) == 1
    [dm] = fake.messages("UREQ")
    assert len(_values(dm, ActionId.FEEDBACK_YES)) == 2
    assert [r.status for r in _rows(committing_factory)] == ["sent", "sent"]


def test_a_folded_resolution_answers_for_itself_and_nps_is_stored_once_and_shown(
        bolt, slack, committing_factory):
    client = _client(slack)
    first = _resolved(committing_factory, at=T0, user=REQUESTER)
    _deliver(committing_factory, client, T0 + DAY)
    second = _resolved(committing_factory, at=T0 + 2 * DAY, user=REQUESTER)
    _deliver(committing_factory, client, T0 + 3 * DAY)
    [dm] = slack.messages(REQUESTER)
    channel, ts = slack.dm_channel(REQUESTER), dm["ts"]
    head = _rows(committing_factory)[0]
    # The first DM asked NPS; the fold kept the question.
    assert _values(dm, nps_action_id(8)) == [nps_value(head.id, 8)]

    # Yes on the second resolution only: recorded on it, the first still asks.
    bolt.click(ActionId.FEEDBACK_YES, feedback_value(second), channel=channel, message_ts=ts)
    bolt.settled()
    with transaction(committing_factory) as session:
        answers = {r.ticket_id: r.resolution_confirmed for r in session.scalars(select(TicketResolution))}
    assert answers == {first: None, second: True}
    [dm] = slack.messages(REQUESTER)
    assert _values(dm, ActionId.FEEDBACK_YES) == [feedback_value(first)]
    assert "You said this solved it" in shown(dm)

    # NPS: answered twice, one row with the last score, shown on the DM and in the stats.
    bolt.click(nps_action_id(3), nps_value(head.id, 3), channel=channel, message_ts=ts)
    bolt.click(nps_action_id(10), nps_value(head.id, 10), channel=channel, message_ts=ts)
    bolt.settled()
    with transaction(committing_factory) as session:
        [answer] = session.scalars(select(NpsAnswer)).all()
    assert (answer.user_id, answer.score, answer.outbox_id) == (REQUESTER, 10, head.id)
    [dm] = slack.messages(REQUESTER)
    assert "You answered *10*/10" in shown(dm)
    # Someone else's click counts for nothing.
    stranger = bolt.click(nps_action_id(0), nps_value(head.id, 0), user="USTRANGER",
                          channel=channel, message_ts=ts)
    assert stranger.status_code == 200
    with transaction(committing_factory) as session:
        assert session.scalar(select(NpsAnswer.score)) == 10
    stats = shown(bolt.command("/resolution-stats", "7").json())
    assert "*NPS*\n+100 from 1 answer (1 promoters, 0 detractors)" in stats


def test_nps_is_asked_once_per_interval(committing_factory, fake):
    client = _client(fake)

    def dm_after(days: int):
        _resolved(committing_factory, at=T0 + days * DAY)
        before = len(_posts(fake))
        _deliver(committing_factory, client, T0 + (days + 1) * DAY)
        [post] = _posts(fake)[before:]
        return post

    asks = [bool(_values(dm_after(days).args, nps_action_id(0))) for days in (0, 10, 50, 95)]
    assert asks == [True, False, False, True]
    with transaction(committing_factory) as session:
        asked = session.scalars(select(NpsAnswer.asked_at).order_by(NpsAnswer.id)).all()
    assert [(at - T0).days for at in asked] == [1, 96]
