"""A person's resolution is followed up like the bot's: one DM after the delay, with the
same buttons (answering the person's record), never after an answer or a rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.settings import load_settings
from bot.delivery import outbox
from bot.delivery.slack_client import make_web_client
from bot.domain import feedback, followups, rollback, teamwork
from bot.domain.ratelimit import RollbackThrottle, make_storage
from bot.sandbox.standin import SlackStandIn
from bot.views import parse_feedback_target
from models import OutboxPurpose, OutboxStatus, PersonResolution, SlackOutbox, transaction
from tests.support.factories import make_ticket

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
TTL = timedelta(minutes=2)
MEMBER = "UMEMBER"


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture()
def client(fake):
    settings = load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                             slack_bot_token=fake.token)
    return make_web_client(settings, timeout=2)


@pytest.fixture()
def team_settings(settings):
    return load_settings(database_url=settings.database_url, team_channels="Network=CNETWORK",
                         followup_delay="24h")


def _resolved_by_a_person(factory, settings) -> tuple[int, int]:
    with transaction(factory) as session:
        ticket = make_ticket(session, user_id="UREQ", assigned_team="Network", created_at=T0)
        result = teamwork.resolve_ticket(session, ticket_id=ticket.ticket_id, user_id=MEMBER,
                                         note="Replaced the dock's power supply", settings=settings,
                                         may_act=lambda channel: channel == "CNETWORK", now=T0)
        return ticket.ticket_id, result.resolution.id


def _row(factory) -> SlackOutbox:
    with transaction(factory) as session:
        return session.scalars(select(SlackOutbox).where(SlackOutbox.purpose == OutboxPurpose.FOLLOWUP)).one()


def test_one_dm_after_the_delay_whose_buttons_answer_the_persons_record(committing_factory, team_settings,
                                                                        client, fake):
    ticket_id, person_id = _resolved_by_a_person(committing_factory, team_settings)

    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY - timedelta(seconds=1)) == 0
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 1

    [dm] = fake.calls("chat.postMessage")
    assert dm.args["channel"] == "UREQ" and dm.response["channel"] == fake.dm_channel("UREQ")
    assert dm.args["text"] == f"Yesterday <@{MEMBER}> resolved your ticket #{ticket_id}. Did it solve it?"
    assert "Replaced the dock's power supply" in str(dm.args["blocks"])
    assert dm.args["metadata"]["event_payload"]["person_resolution_id"] == person_id
    values = {e["action_id"]: e["value"] for b in dm.args["blocks"] for e in b.get("elements", [])
              if e.get("type") == "button"}
    assert parse_feedback_target(values["feedback_no"]) == (ticket_id, person_id, None)
    assert parse_feedback_target(values["rate_3"]) == (ticket_id, person_id, 3)
    with transaction(committing_factory) as session:
        sent_at = session.get(PersonResolution, person_id).followup_sent_at
    assert T0 + DAY <= sent_at < T0 + DAY + timedelta(minutes=1)
    assert _row(committing_factory).status == OutboxStatus.SENT
    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + 3 * DAY) == 0


def test_an_answer_before_the_delay_means_no_dm(committing_factory, team_settings, client, fake):
    ticket_id, person_id = _resolved_by_a_person(committing_factory, team_settings)
    with transaction(committing_factory) as session:
        feedback.record_rating(session, ticket_id=ticket_id, user_id="UREQ", score=2,
                               person_resolution_id=person_id, now=T0 + timedelta(hours=2))

    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert fake.calls("chat.postMessage") == []
    row = _row(committing_factory)
    assert (row.status, row.cancel_reason) == (OutboxStatus.CANCELLED, followups.ANSWERED)


def test_an_answer_after_the_claim_still_stops_the_dm(committing_factory, team_settings, client, fake):
    ticket_id, person_id = _resolved_by_a_person(committing_factory, team_settings)
    with transaction(committing_factory) as session:
        claimed = outbox.claim_due(session, now=T0 + DAY, ttl=TTL)
    with transaction(committing_factory) as session:
        feedback.record_answer(session, ticket_id=ticket_id, user_id="UREQ", solved=True,
                               default_team="IT", person_resolution_id=person_id, now=T0 + DAY)

    assert outbox.send_claimed(committing_factory, client, claimed, ttl=TTL, now=T0 + DAY) == 0
    assert fake.calls("chat.postMessage") == []
    assert _row(committing_factory).cancel_reason == followups.ANSWERED


def test_a_withdrawn_resolution_is_not_followed_up(committing_factory, team_settings, client, fake,
                                                   namespace):
    ticket_id, person_id = _resolved_by_a_person(committing_factory, team_settings)
    with transaction(committing_factory) as session:
        action_id = session.get(PersonResolution, person_id).action_id
        rollback.rollback_action(session, ref=action_id.hex, admin_id="UADMIN", is_admin=True,
                                 reason="", throttle=RollbackThrottle(team_settings, make_storage(None),
                                                                      namespace=namespace))

    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0
    assert fake.calls("chat.postMessage") == []
    assert _row(committing_factory).cancel_reason == followups.ROLLED_BACK


def test_a_dm_slack_will_not_take_gives_the_persons_follow_up_up(committing_factory, team_settings,
                                                                 client, fake):
    _, person_id = _resolved_by_a_person(committing_factory, team_settings)
    fake.fail_next("chat.postMessage", error="channel_not_found")

    assert outbox.deliver(committing_factory, client, ttl=TTL, now=T0 + DAY) == 0

    assert _row(committing_factory).status == OutboxStatus.FAILED
    with transaction(committing_factory) as session:
        assert session.get(PersonResolution, person_id).followup_due_at is None
