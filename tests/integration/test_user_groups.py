"""Who is in a Slack user group, asked of the fake Slack's usergroups.list and
usergroups.users.list: cached five minutes, and "no" whenever Slack cannot say."""

from __future__ import annotations

import logging
import time

import pytest

from bot.core.settings import load_settings
from bot.delivery.slack_client import make_web_client
from bot.delivery.user_groups import CACHE_SECONDS, LOOKUP_BUDGET, UserGroups
from bot.sandbox.standin import SlackStandIn


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

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
def groups(fake, clock):
    settings = load_settings(database_url="sqlite://", slack_api_url=fake.base_url,
                             slack_bot_token=fake.token)
    return UserGroups(make_web_client(settings), clock=clock)


def test_a_member_is_found_by_handle_and_a_removed_one_is_out_after_five_minutes(fake, groups, clock):
    group_id = fake.set_usergroup("it-admins", ["UALICE", "UBOB"])

    assert groups.member_of_any(["it-admins"], "UALICE") is True
    assert groups.member_of_any(["it-admins"], "UCAROL") is False
    [listed] = fake.calls("usergroups.list")
    assert [c.args["usergroup"] for c in fake.calls("usergroups.users.list")] == [group_id]

    fake.set_usergroup("it-admins", ["UBOB"])  # Alice is removed
    clock.now += CACHE_SECONDS - 1
    assert groups.member_of_any(["it-admins"], "UALICE") is True  # still the cached list
    clock.now += 1
    assert groups.member_of_any(["it-admins"], "UALICE") is False
    assert groups.member_of_any(["it-admins"], "UBOB") is True
    assert len(fake.calls("usergroups.list")) == 2 and len(fake.calls("usergroups.users.list")) == 2


def test_any_of_several_groups_counts_and_each_is_asked_only_when_needed(fake, groups):
    fake.set_usergroup("it-admins", ["UALICE"])
    fake.set_usergroup("helpdesk-leads", ["ULEAD"])

    assert groups.member_of_any(["it-admins", "helpdesk-leads"], "UALICE") is True
    assert len(fake.calls("usergroups.users.list")) == 1  # found in the first group
    assert groups.member_of_any(["it-admins", "helpdesk-leads"], "ULEAD") is True
    assert groups.member_of_any(["it-admins", "helpdesk-leads"], "USTRANGER") is False
    assert len(fake.calls("usergroups.users.list")) == 2
    assert len(fake.calls("usergroups.list")) == 1


def test_an_unknown_or_disabled_group_has_nobody_and_is_logged_once(fake, groups, caplog):
    fake.set_usergroup("old-admins", ["UALICE"], enabled=False)

    with caplog.at_level(logging.WARNING):
        assert groups.member_of_any(["it-admns"], "UALICE") is False  # a typo
        assert groups.member_of_any(["it-admns"], "UALICE") is False
        assert groups.member_of_any(["old-admins"], "UALICE") is False
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"Slack knows no enabled user group @{handle} (ADMIN_GROUPS / APPROVER_GROUPS): "
                    "nobody is in it" for handle in ("it-admns", "old-admins")]


@pytest.mark.parametrize("method", ["usergroups.list", "usergroups.users.list"])
@pytest.mark.parametrize("fault", [
    {"error": "missing_scope"}, {"error": "plan_upgrade_required"}, {"status": 500},
    {"status": 429, "retry_after": 1},
])
def test_when_slack_cannot_say_nobody_is_a_member_and_the_next_click_asks_again(fake, groups, method, fault):
    fake.set_usergroup("it-admins", ["UALICE"])
    fake.fail_next(method, **fault)

    assert groups.member_of_any(["it-admins"], "UALICE") is False
    assert groups.member_of_any(["it-admins"], "UALICE") is True
    assert len(fake.calls(method)) == 2


def test_a_slow_slack_is_a_no_within_the_budget(fake, groups):
    fake.set_usergroup("it-admins", ["UALICE"])
    fake.set_usergroup("leads", ["ULEAD"])
    fake.delay("usergroups.list", 1.2)
    fake.delay("usergroups.users.list", 2.5, times=2)

    started = time.monotonic()
    assert groups.member_of_any(["it-admins", "leads"], "ULEAD") is False
    # However many calls one check needs, it gives up within its budget (plus a little).
    assert time.monotonic() - started < LOOKUP_BUDGET + 0.5


def test_empty_handles_or_user_ask_nothing(fake, groups):
    fake.set_usergroup("it-admins", ["UALICE"])
    assert groups.member_of_any([], "UALICE") is False
    assert groups.member_of_any(["it-admins"], "") is False
    assert fake.calls() == []
