"""The app's Web API client against the fake Slack: base URL, token, retries, timeouts, errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from bot.core.settings import Settings, load_settings
from bot.delivery.slack_client import (
    DEFAULT_TIMEOUT,
    PERMANENT_ERRORS,
    TOKEN_ERRORS,
    SlackTokenRefused,
    SlackUnavailable,
    make_web_client,
    respond,
    safe_call,
)
from bot.sandbox.standin import SlackStandIn

SECRET_TEXT = "Your new VPN password is hunter2"


@pytest.fixture()
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as fake:
        yield fake


@pytest.fixture()
def settings(slack: SlackStandIn) -> Settings:
    return load_settings(slack_bot_token=slack.token, slack_api_url=slack.base_url)


def _post(client: WebClient, **extra: Any) -> SlackResponse | None:
    return safe_call(client, "chat.postMessage", channel="C1", text="VPN fixed", **extra)


def test_client_talks_to_slack_api_url_with_the_bot_token(slack: SlackStandIn, settings: Settings) -> None:
    response = _post(make_web_client(settings))

    call = slack.last("chat.postMessage")
    assert call.token == "xoxb-test-token"
    assert call.args["channel"] == "C1"
    assert response is not None and response["ts"] == slack.messages("C1")[0]["ts"]


def test_base_url_without_trailing_slash_keeps_the_api_path(slack: SlackStandIn) -> None:
    settings = load_settings(slack_bot_token=slack.token, slack_api_url=slack.base_url.rstrip("/"))

    assert safe_call(make_web_client(settings), "auth.test") is not None
    assert slack.last("auth.test").outcome == "ok"


def test_rate_limited_then_delivered_once_after_retry_after(slack: SlackStandIn, settings: Settings) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)

    started = time.monotonic()
    response = _post(make_web_client(settings))
    elapsed = time.monotonic() - started

    assert response is not None
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert len(slack.messages("C1")) == 1
    assert 1.0 <= elapsed < 3.0  # Retry-After honoured, and not much more


def test_rate_limit_retries_are_bounded(slack: SlackStandIn, settings: Settings) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=0, times=10)

    assert _post(make_web_client(settings)) is None
    assert len(slack.calls("chat.postMessage")) == 3  # 1 attempt + 2 retries
    with pytest.raises(SlackUnavailable) as unavailable:
        _post(make_web_client(settings), raise_transient=True)
    assert (unavailable.value.error, unavailable.value.status) == ("ratelimited", 429)
    assert unavailable.value.retry_after == 0
    assert slack.messages("C1") == []


def test_retry_after_beyond_the_cap_is_not_slept_through(slack: SlackStandIn, settings: Settings) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=60)
    client = make_web_client(settings, max_rate_limit_wait=2)

    started = time.monotonic()
    with pytest.raises(SlackUnavailable) as unavailable:
        _post(client, raise_transient=True)

    assert time.monotonic() - started < 1.0
    assert unavailable.value.retry_after == 60  # the job layer can schedule it
    assert len(slack.calls("chat.postMessage")) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_then_delivered(slack: SlackStandIn, settings: Settings, status: int) -> None:
    slack.fail_next("chat.postMessage", status=status)

    assert _post(make_web_client(settings)) is not None
    assert [c.status for c in slack.calls("chat.postMessage")] == [status, 200]
    assert len(slack.messages("C1")) == 1


def test_persistent_server_error_gives_up_after_bounded_retries(
    slack: SlackStandIn, settings: Settings
) -> None:
    slack.fail_next("chat.postMessage", status=503, times=10)

    with pytest.raises(SlackUnavailable) as unavailable:
        _post(make_web_client(settings), raise_transient=True)

    assert unavailable.value.status == 503
    assert len(slack.calls("chat.postMessage")) == 3


def test_dropped_connection_then_delivered(slack: SlackStandIn, settings: Settings) -> None:
    slack.drop_connection_next("chat.postMessage")

    assert _post(make_web_client(settings)) is not None
    assert [c.outcome for c in slack.calls("chat.postMessage")] == ["dropped", "ok"]
    assert len(slack.messages("C1")) == 1


def test_permanent_error_returns_none_logged_without_token_or_text(
    slack: SlackStandIn, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.fail_next("chat.postMessage", error="channel_not_found", times=2)
    client = make_web_client(settings)

    plain = safe_call(client, "chat.postMessage", channel="C404", text=SECRET_TEXT)
    asked_to_raise = safe_call(
        client, "chat.postMessage", channel="C404", text=SECRET_TEXT, raise_transient=True
    )

    assert plain is None and asked_to_raise is None
    assert len(slack.calls("chat.postMessage")) == 2  # not retried
    ours = [r for r in caplog.records if r.name == "bot.delivery.slack_client"]
    assert len(ours) == 2
    assert all(r.levelno == logging.WARNING for r in ours)
    message = ours[0].getMessage()
    assert "channel_not_found" in message and "chat.postMessage" in message and "C404" in message
    assert all(SECRET_TEXT not in r.getMessage() for r in ours)
    assert "xoxb-" not in caplog.text


def test_a_refused_token_is_logged_as_an_error_and_raised_only_when_asked(
    slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(slack_bot_token="xoxb-revoked-123", slack_api_url=slack.base_url)
    client = make_web_client(settings)

    assert safe_call(client, "auth.test") is None
    with pytest.raises(SlackTokenRefused) as refused:
        safe_call(client, "auth.test", raise_transient=True)

    # A SlackUnavailable: a caller that only retries later still keeps what it owes.
    assert isinstance(refused.value, SlackUnavailable)
    assert (refused.value.method, refused.value.error) == ("auth.test", "invalid_auth")
    assert len(slack.calls("auth.test")) == 2  # not retried by the client
    ours = [r for r in caplog.records if r.name == "bot.delivery.slack_client"]
    assert [r.levelno for r in ours] == [logging.ERROR] * 2
    assert "invalid_auth" in ours[0].getMessage() and "SLACK_BOT_TOKEN" in ours[0].getMessage()
    assert "xoxb-" not in caplog.text


def test_token_and_grant_errors_are_neither_permanent_nor_transient() -> None:
    assert {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
            "missing_scope"} <= TOKEN_ERRORS
    assert not TOKEN_ERRORS & PERMANENT_ERRORS


def test_unknown_error_code_is_treated_as_transient(slack: SlackStandIn, settings: Settings) -> None:
    assert "internal_error" not in PERMANENT_ERRORS
    slack.fail_next("chat.postMessage", error="internal_error")

    with pytest.raises(SlackUnavailable) as unavailable:
        _post(make_web_client(settings), raise_transient=True)

    assert unavailable.value.error == "internal_error"


def test_default_timeout_is_explicit(settings: Settings) -> None:
    client = make_web_client(settings)

    assert client.timeout == DEFAULT_TIMEOUT == 10
    assert make_web_client(settings, timeout=2.5).timeout == 2.5


def test_slow_slack_hits_the_client_timeout(slack: SlackStandIn, settings: Settings) -> None:
    slack.delay("chat.postMessage", 1.0, times=2)
    client = make_web_client(settings, timeout=0.3)

    started = time.monotonic()
    result = _post(client)
    elapsed = time.monotonic() - started
    with pytest.raises(SlackUnavailable) as unavailable:
        _post(client, raise_transient=True)

    assert result is None
    assert elapsed < 0.9  # gave up at the timeout, did not wait for the answer
    assert unavailable.value.error == "TimeoutError" and unavailable.value.status is None
    # Slow is not failed: Slack may still post, which is why timeouts are not retried.
    slack.wait_for("chat.postMessage", count=2, timeout=3)
    assert len(slack.messages("C1")) == 2


def test_connection_refused_is_transient(settings: Settings) -> None:
    with SlackStandIn() as gone:
        dead_url = gone.base_url  # a port that was just ours and is now closed
    offline = load_settings(slack_bot_token="xoxb-test-token", slack_api_url=dead_url)

    client = make_web_client(offline, max_retries=0)
    assert safe_call(client, "auth.test") is None
    with pytest.raises(SlackUnavailable):
        safe_call(client, "auth.test", raise_transient=True)


def test_method_may_be_dotted_or_underscored(slack: SlackStandIn, settings: Settings) -> None:
    client = make_web_client(settings)

    assert safe_call(client, "users.info", user="U1") is None  # user_not_found, permanent
    slack.set_user("U1", real_name="Ada")
    assert safe_call(client, "users_info", user="U1")["user"]["real_name"] == "Ada"
    with pytest.raises(ValueError):
        safe_call(client, "chat.frobnicate", channel="C1")


# Keep-alive ------------------------------------------------------------------------

def test_calls_reuse_one_connection_and_failures_still_read_as_before(
        slack: SlackStandIn, settings: Settings) -> None:
    client = make_web_client(settings, max_rate_limit_wait=2)

    for n in range(5):
        assert safe_call(client, "chat.postMessage", channel="C1", text=f"message {n}") is not None
    assert client.auth_test()["ok"]
    slack.fail_next("chat.postMessage", status=429, retry_after=0)  # an HTTP error, then a retry
    assert _post(client) is not None
    slack.fail_next("chat.postMessage", error="channel_not_found")  # Slack's own error: no retry
    assert _post(client) is None

    assert len(slack.messages("C1")) == 6
    assert slack.connections() == 1  # 9 calls, one TCP connection

    # A connection the server closed (here: without an answer) is not reused: the next
    # call opens another, and the dropped call is retried on it.
    slack.drop_connection_next("chat.postMessage")
    assert _post(client) is not None
    assert slack.connections() == 2 and len(slack.messages("C1")) == 7


def test_answers_through_response_urls_reuse_one_connection(slack: SlackStandIn) -> None:
    for n in range(4):
        assert respond(slack.response_url(f"U1.trig-{n}"), text=f"answer {n}") is True
    assert respond(slack.base_url.removesuffix("/api/") + "/nowhere", text="x") is False  # a 404

    assert [r.args["text"] for r in slack.responses("U1")] == [f"answer {n}" for n in range(4)]
    assert slack.connections() == 1


def test_the_lookups_of_a_click_share_the_clients_connection(slack: SlackStandIn, settings: Settings) -> None:
    from bot.delivery.channel_members import ChannelMembers
    from bot.delivery.slack_roles import WorkspaceRoles

    client = make_web_client(settings)
    slack.set_user("UADMIN2", is_admin=True)
    slack.set_members("C1", ["U1"])

    assert _post(client) is not None
    assert WorkspaceRoles(client)("UADMIN2") is True  # users.info, short timeout, no retries
    assert ChannelMembers(client).is_member("C1", "U1") is True  # conversations.members
    assert slack.connections() == 1
