"""Our Slack request signer against Slack's published example and slack_sdk's verifier."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    block_actions_body,
    block_actions_payload,
    event_body,
    sign,
    signed_headers,
    slash_command_body,
)

# The worked example in Slack's "Verifying requests from Slack" documentation
# (https://api.slack.com/authentication/verifying-requests-from-slack), as quoted
# byte-for-byte by several independent public test suites.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = 1531420618
DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    "&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
    "%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "test-signing-secret"


class _FrozenClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_slack_published_example_signs_to_the_published_signature() -> None:
    headers = sign(DOC_SECRET, DOC_BODY, DOC_TIMESTAMP)

    assert headers == {TIMESTAMP_HEADER: "1531420618", SIGNATURE_HEADER: DOC_SIGNATURE}


def test_slack_published_example_bytes_body_signs_the_same() -> None:
    assert sign(DOC_SECRET, DOC_BODY.encode(), DOC_TIMESTAMP)[SIGNATURE_HEADER] == DOC_SIGNATURE


def test_slash_command_body_reproduces_slacks_example_body() -> None:
    """The builder encodes fields in Slack's order and quoting (`/` as %2F, empty text)."""
    body = slash_command_body(
        "/webhook-collect",
        "",
        user_id="U2CERLKJA",
        channel_id="G8PSS9T3V",
        team_id="T1DC2JH3J",
        trigger_id="398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        response_url="https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN",
        user_name="roadrunner",
        channel_name="foobar",
        team_domain="testteamnow",
        token="xyzz0WbapA4vBCDEFasx0q6G",
        api_app_id=None,
    )

    assert body == DOC_BODY


def test_published_example_verifies_with_slack_sdk_at_that_time() -> None:
    verifier = SignatureVerifier(DOC_SECRET, clock=_FrozenClock(DOC_TIMESTAMP + 10))

    assert verifier.is_valid(DOC_BODY, str(DOC_TIMESTAMP), DOC_SIGNATURE)


@pytest.mark.parametrize(
    "body",
    [
        slash_command_body("/ticket", "VPN drops every hour ünïcode & more",
                           user_id="U1", channel_id="C1", team_id="T1"),
        event_body({"type": "app_mention", "user": "U1", "text": "<@UBOT> help", "channel": "C1"},
                   event_id="Ev1", team_id="T1"),
        block_actions_body({"type": "block_actions", "actions": [{"action_id": "x"}]}),
    ],
    ids=["command", "event", "interactivity"],
)
def test_sign_verifies_with_slack_sdk(body: str) -> None:
    headers = sign(SECRET, body)

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert SignatureVerifier(SECRET).is_valid_request(body.encode(), headers)


def test_changed_body_fails_verification() -> None:
    body = slash_command_body("/ticket", "printer jam", user_id="U1", channel_id="C1", team_id="T1")
    headers = sign(SECRET, body)

    tampered = body.replace("printer", "prInter")

    assert not SignatureVerifier(SECRET).is_valid_request(tampered, headers)


def test_other_secret_fails_verification() -> None:
    body = "a=1"
    headers = sign(SECRET, body)

    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)


def test_changed_timestamp_fails_verification() -> None:
    body = "a=1"
    headers = sign(SECRET, body)
    headers[TIMESTAMP_HEADER] = str(int(headers[TIMESTAMP_HEADER]) - 1)

    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)


def test_old_timestamp_is_rejected_even_when_correctly_signed() -> None:
    body = "a=1"
    headers = sign(SECRET, body, int(time.time()) - 6 * 60)

    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)


def test_default_timestamp_is_now() -> None:
    before = int(time.time())
    stamp = int(sign(SECRET, "x")[TIMESTAMP_HEADER])

    assert before <= stamp <= int(time.time())


def test_signed_headers_carry_content_type_and_signature() -> None:
    headers = signed_headers(SECRET, "{}", content_type="application/json", timestamp=1700000000)

    assert headers["Content-Type"] == "application/json"
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert headers[SIGNATURE_HEADER] == sign(SECRET, "{}", 1700000000)[SIGNATURE_HEADER]


def test_slash_command_body_fields() -> None:
    body = slash_command_body("/ticket", "wifi & vpn", user_id="U9", channel_id="C9", team_id="T9")
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    assert fields["command"] == "/ticket"
    assert fields["text"] == "wifi & vpn"
    assert (fields["user_id"], fields["channel_id"], fields["team_id"]) == ("U9", "C9", "T9")
    assert fields["trigger_id"] and fields["response_url"].startswith("https://hooks.slack.com/")


def test_block_actions_body_round_trips_payload() -> None:
    payload = block_actions_payload(
        "feedback_yes", "ticket-42", user_id="U1", channel_id="C1", team_id="T1",
        message_ts="1732527000.000100",
    )
    body = block_actions_body(payload)

    assert list(parse_qs(body)) == ["payload"]
    decoded = json.loads(parse_qs(body)["payload"][0])
    assert decoded == payload
    assert decoded["type"] == "block_actions"
    assert decoded["actions"][0]["action_id"] == "feedback_yes"
    assert decoded["container"]["message_ts"] == "1732527000.000100"


def test_event_body_is_an_event_callback() -> None:
    event = {"type": "message", "channel_type": "im", "user": "U1", "text": "hi", "channel": "D1"}
    document = json.loads(event_body(event, event_id="Ev42", team_id="T1", event_time=1700000000))

    assert document["type"] == "event_callback"
    assert document["event"] == event
    assert (document["event_id"], document["team_id"], document["event_time"]) == (
        "Ev42", "T1", 1700000000,
    )
