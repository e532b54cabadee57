"""Who is in a team's channel, asked of the fake Slack's conversations.members: read to
the last page, cached briefly, and "no" whenever Slack cannot say."""

from __future__ import annotations

import pytest

from bot.core.settings import load_settings
from bot.delivery.channel_members import CACHE_SECONDS, ChannelMembers
from bot.delivery.slack_client import make_web_client
from bot.sandbox.standin import SlackStandIn


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def members(fake, clock):
    settings = load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                             slack_bot_token=fake.token)
    return ChannelMembers(make_web_client(settings), clock=clock)


def test_members_are_read_across_pages_and_asked_once_a_minute(fake, members, clock):
    fake.set_members("CNETWORK", [f"U{n:05d}" for n in range(2500)])

    assert members.is_member("CNETWORK", "U02499") and members.is_member("CNETWORK", "U00000")
    assert not members.is_member("CNETWORK", "USTRANGER")
    calls = fake.calls("conversations.members")
    assert [c.args.get("cursor") or "" for c in calls] == ["", "next:1000", "next:2000"]

    fake.set_members("CNETWORK", ["USTRANGER"])
    assert not members.is_member("CNETWORK", "USTRANGER")  # still the cached list
    clock.now += CACHE_SECONDS
    assert members.is_member("CNETWORK", "USTRANGER") and not members.is_member("CNETWORK", "U00000")
    assert len(fake.calls("conversations.members")) == 4


@pytest.mark.parametrize("fault", [
    {"error": "channel_not_found"}, {"error": "not_in_channel"}, {"status": 500},
    {"status": 429, "retry_after": 1},
])
def test_when_slack_cannot_say_nobody_is_a_member_and_the_next_click_asks_again(fake, members, fault):
    fake.set_members("CNETWORK", ["UMEMBER"])
    fake.fail_next("conversations.members", **fault)

    assert members.is_member("CNETWORK", "UMEMBER") is False
    assert members.is_member("CNETWORK", "UMEMBER") is True
    assert len(fake.calls("conversations.members")) == 2


def test_a_slow_slack_is_a_no_within_the_click(fake, members):
    fake.set_members("CNETWORK", ["UMEMBER"])
    fake.delay("conversations.members", 2.5)
    assert members.is_member("CNETWORK", "UMEMBER") is False


def test_a_channel_the_fake_does_not_know_and_empty_ids_are_no(fake, members):
    assert members.is_member("CUNKNOWN", "UMEMBER") is False
    assert members.is_member("", "UMEMBER") is False
    fake.set_members("CNETWORK", ["UMEMBER"])
    assert members.is_member("CNETWORK", "") is False
