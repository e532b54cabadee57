"""The fake Slack Web API answers as Slack documents, records calls, and fails on cue."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import RemoteDisconnected
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox.standin import SlackStandIn


@pytest.fixture()
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as fake:
        yield fake


@pytest.fixture()
def client(slack: SlackStandIn) -> WebClient:
    # No retry handlers: these tests look at what the fake answers to each single call.
    return WebClient(token=slack.token, base_url=slack.base_url, timeout=5, retry_handlers=[])


def _raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_binds_loopback_on_a_fresh_port_each_time() -> None:
    with SlackStandIn() as one, SlackStandIn() as two:
        assert one.base_url.startswith("http://127.0.0.1:")
        assert one.base_url.endswith("/api/")
        assert one.base_url != two.base_url


def test_auth_test_reports_the_configured_identity() -> None:
    with SlackStandIn(team_id="T42", bot_user_id="U0BOT", bot_id="B42") as fake:
        answer = WebClient(token=fake.token, base_url=fake.base_url).auth_test()

    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T42", "U0BOT", "B42")


def test_missing_token_is_not_authed_and_wrong_token_is_invalid_auth(slack: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=slack.base_url, retry_handlers=[]).auth_test()
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=slack.base_url, retry_handlers=[]).auth_test()

    assert missing.value.response["error"] == "not_authed"
    assert wrong.value.response["error"] == "invalid_auth"
    assert [c.outcome for c in slack.calls("auth.test")] == ["not_authed", "invalid_auth"]


def test_configurable_token() -> None:
    with SlackStandIn(token="xoxb-other") as fake:
        assert WebClient(token="xoxb-other", base_url=fake.base_url).auth_test()["ok"]


def test_records_method_args_and_bearer_token(slack: SlackStandIn, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*VPN*"}}]
    answer = client.chat_postMessage(channel="C1", text="VPN fixed", blocks=blocks, thread_ts="1.2")

    call = slack.last("chat.postMessage")
    assert call.args["channel"] == "C1" and call.args["blocks"] == blocks
    assert call.token == "xoxb-test-token"
    assert call.headers["authorization"] == "Bearer xoxb-test-token"
    assert answer["channel"] == "C1"
    assert answer["message"]["text"] == "VPN fixed"
    assert answer["message"]["blocks"] == blocks
    assert answer["message"]["thread_ts"] == "1.2"


def test_form_body_with_json_strings_is_decoded(slack: SlackStandIn) -> None:
    blocks = [{"type": "divider"}]
    metadata = {"event_type": "ticket", "event_payload": {"ticket_id": 7}}
    body = urlencode({"channel": "C9", "text": "hi", "blocks": json.dumps(blocks),
                      "metadata": json.dumps(metadata)}).encode()

    status, answer, _ = _raw_post(
        slack.base_url + "chat.postMessage", body,
        {"Authorization": f"Bearer {slack.token}",
         "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert status == 200 and answer["ok"]
    assert slack.last("chat.postMessage").args["blocks"] == blocks
    assert slack.messages("C9")[0]["metadata"] == metadata


def test_get_with_query_string_works(slack: SlackStandIn) -> None:
    slack.set_user("U1", real_name="Ada")
    request = urllib.request.Request(
        slack.base_url + "users.info?user=U1", headers={"Authorization": f"Bearer {slack.token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())

    assert answer["user"]["real_name"] == "Ada"


def test_unknown_method(slack: SlackStandIn, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as error:
        client.api_call("chat.frobnicate", json={"channel": "C1"})

    assert error.value.response["error"] == "unknown_method"


def test_history_includes_metadata_only_when_asked(slack: SlackStandIn, client: WebClient) -> None:
    metadata = {"event_type": "resolvemeq_followup", "event_payload": {"ticket_id": 12}}
    channel = client.chat_postMessage(channel="U1", text="Did it work?", metadata=metadata)["channel"]

    plain = client.conversations_history(channel=channel)["messages"]
    full = client.conversations_history(channel=channel, include_all_metadata=True)["messages"]

    assert "metadata" not in plain[0]
    assert full[0]["metadata"] == metadata
    assert full[0]["text"] == "Did it work?"


def test_history_is_newest_first_with_oldest_and_limit(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel="C1", text=f"m{i}")["ts"] for i in range(4)]
    client.chat_postMessage(channel="C1", text="reply", thread_ts=stamps[0])

    everything = client.conversations_history(channel="C1")
    after_first = client.conversations_history(channel="C1", oldest=stamps[0])
    newest_two = client.conversations_history(channel="C1", limit=2)

    assert [m["text"] for m in everything["messages"]] == ["m3", "m2", "m1", "m0"]
    assert [m["ts"] for m in after_first["messages"]] == stamps[:0:-1]
    assert [m["text"] for m in newest_two["messages"]] == ["m3", "m2"]
    assert newest_two["has_more"] is True and everything["has_more"] is False


def test_users_info_configured_and_unknown(slack: SlackStandIn, client: WebClient) -> None:
    slack.set_user("UADMIN", is_admin=True, real_name="Grace Hopper")
    slack.set_user("UOWNER", is_owner=True)

    admin = client.users_info(user="UADMIN")["user"]
    owner = client.users_info(user="UOWNER")["user"]
    with pytest.raises(SlackApiError) as unknown:
        client.users_info(user="UNOBODY")

    assert (admin["is_admin"], admin["is_owner"], admin["real_name"]) == (True, False, "Grace Hopper")
    assert (owner["is_admin"], owner["is_owner"]) == (False, True)
    assert unknown.value.response["error"] == "user_not_found"


def test_concurrent_posts_get_unique_increasing_ts(slack: SlackStandIn, client: WebClient) -> None:
    stamps: list[str] = []
    lock = threading.Lock()

    def post(i: int) -> None:
        ts = client.chat_postMessage(channel="C1", text=f"n{i}")["ts"]
        with lock:
            stamps.append(ts)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(stamps)) == 24
    stored = [m["ts"] for m in slack.messages("C1")]
    assert sorted(stored, key=float) == stored == sorted(stamps, key=float)
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


def test_conversations_open_is_deterministic_per_user(client: WebClient) -> None:
    first = client.conversations_open(users="U1")["channel"]["id"]
    again = client.conversations_open(users="U1")["channel"]["id"]
    other = client.conversations_open(users="U2")["channel"]["id"]

    assert first == again and first.startswith("D")
    assert other != first


def test_update_delete_ephemeral_views_reactions(slack: SlackStandIn, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="working on it")["ts"]
    keep = client.chat_postMessage(channel="C1", text="keep")["ts"]
    client.chat_update(channel="C1", ts=ts, text="resolved")
    client.reactions_add(channel="C1", timestamp=keep, name="white_check_mark")
    client.chat_delete(channel="C1", ts=ts)
    ephemeral = client.chat_postEphemeral(channel="C1", user="U2", text="Only the requester")
    home = client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    modal = client.views_open(trigger_id="t", view={"type": "modal", "blocks": []})
    updated = client.views_update(view_id=modal["view"]["id"], view={"type": "modal", "blocks": []})

    assert [m["text"] for m in slack.messages("C1")] == ["keep"]
    assert slack.messages("C1")[0]["reactions"][0]["name"] == "white_check_mark"
    assert ephemeral["message_ts"]
    assert slack.ephemerals("C1")[0]["user"] == "U2"
    assert slack.home_view("U1")["id"] == home["view"]["id"]
    assert updated["view"]["id"] == modal["view"]["id"]
    with pytest.raises(SlackApiError) as gone:
        client.chat_update(channel="C1", ts=ts, text="again")
    assert gone.value.response["error"] == "message_not_found"


def test_post_without_text_or_blocks_is_no_text(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as error:
        client.api_call("chat.postMessage", json={"channel": "C1"})

    assert error.value.response["error"] == "no_text"


def test_fail_next_429_sends_retry_after_then_recovers(slack: SlackStandIn, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel="C1", text="one")
    client.chat_postMessage(channel="C1", text="two")

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert [(c.status, c.outcome) for c in slack.calls()] == [(429, "ratelimited"), (200, "ok")]
    assert [m["text"] for m in slack.messages("C1")] == ["two"]


def test_fail_next_error_is_http_200_and_times_counts(slack: SlackStandIn, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", error="channel_not_found", times=2)
    errors = []
    for _ in range(3):
        try:
            client.chat_postMessage(channel="C1", text="x")
        except SlackApiError as error:
            errors.append((error.response.status_code, error.response["error"]))

    assert errors == [(200, "channel_not_found")] * 2
    assert len(slack.messages("C1")) == 1


def test_fail_next_server_error(slack: SlackStandIn, client: WebClient) -> None:
    slack.fail_next("auth.test", status=503)

    with pytest.raises(SlackApiError) as error:
        client.auth_test()

    assert error.value.response.status_code == 503
    assert slack.last("auth.test").status == 503


def test_drop_connection_gives_a_connection_error_and_is_recorded(slack: SlackStandIn) -> None:
    slack.drop_connection_next("chat.postMessage")
    body = urlencode({"channel": "C1", "text": "x"}).encode()

    with pytest.raises((RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        _raw_post(slack.base_url + "chat.postMessage", body,
                  {"Authorization": f"Bearer {slack.token}"})

    assert slack.last("chat.postMessage").outcome == "dropped"
    assert slack.messages("C1") == []


def test_delay_slows_the_answer(slack: SlackStandIn, client: WebClient) -> None:
    slack.delay("auth.test", 0.4)

    started = time.monotonic()
    client.auth_test()
    slow = time.monotonic() - started
    started = time.monotonic()
    client.auth_test()
    fast = time.monotonic() - started

    assert slow >= 0.4 > fast


def test_wait_for_sees_calls_from_another_thread(slack: SlackStandIn, client: WebClient) -> None:
    timer = threading.Timer(0.2, lambda: client.chat_postMessage(channel="C1", text="later"))
    timer.start()

    calls = slack.wait_for("chat.postMessage", timeout=5)
    timer.join()

    assert calls[0].args["text"] == "later"


def test_wait_for_times_out_with_what_was_seen(slack: SlackStandIn, client: WebClient) -> None:
    client.auth_test()

    with pytest.raises(AssertionError, match=r"chat\.postMessage.*auth\.test"):
        slack.wait_for("chat.postMessage", timeout=0.2)


def test_reset_forgets_calls_posts_and_faults(slack: SlackStandIn, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="x")
    slack.fail_next("chat.postMessage", error="is_archived")

    slack.reset()
    client.chat_postMessage(channel="C1", text="y")

    assert [c.outcome for c in slack.calls()] == ["ok"]
    assert [m["text"] for m in slack.messages("C1")] == ["y"]


def test_a_channel_without_the_bot_refuses_its_posts_but_a_response_url_reaches_the_user(slack, client):
    from slack_sdk.webhook import WebhookClient

    slack.keep_bot_out("COUTSIDE")
    for method, args in (("chat_postMessage", {}), ("chat_postEphemeral", {"user": "U1"})):
        with pytest.raises(SlackApiError) as refused:
            getattr(client, method)(channel="COUTSIDE", text="hi", **args)
        assert refused.value.response["error"] == "not_in_channel"
    client.chat_postEphemeral(channel="CINSIDE", user="U1", text="first")

    sent = WebhookClient(slack.response_url("U1.trig-1")).send(
        text="second", response_type="ephemeral", replace_original=True)

    assert (sent.status_code, sent.body) == (200, "ok")
    assert [(t["via"], t["text"]) for t in slack.told("U1")] == [
        ("ephemeral", "first"), ("response_url", "second")]
    assert slack.told("U1")[1]["replace_original"] is True
    assert [c.args["response_key"] for c in slack.responses("U1")] == ["U1.trig-1"]
    assert slack.told("U2") == [] and slack.responses("U2") == []


def test_a_post_to_a_user_id_lands_in_the_apps_dm_and_says_which(
        client: WebClient, slack: SlackStandIn) -> None:
    # As on Slack: chat.postMessage to a user id opens the app's DM with them (no
    # conversations.open needed) and answers with the DM's channel id.
    posted = client.chat_postMessage(channel="U0PERSON", text="hello")
    assert posted["channel"].startswith("D") and posted["channel"] == slack.dm_channel("U0PERSON")
    assert [m["text"] for m in slack.messages(posted["channel"])] == ["hello"]
    assert slack.calls("conversations.open") == []
