"""The sandbox's Slack in this process, against a recording stand-in for the bot: what
it sends is signed and shaped as Slack's, and what each person sees is theirs alone.
(The whole loop with the real bot: tests/e2e/test_sandbox.py.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.platform import cli
from bot.sandbox import people
from bot.sandbox.loopback import LoopbackHTTPServer
from bot.sandbox.page import Page
from bot.sandbox.workspace import SandboxSlack

SECRET = "sandbox-test-secret"
TOKEN = "xoxb-sandbox-test"


class RecordingBot(LoopbackHTTPServer):
    """Answers POST /slack/events with `answer` (JSON) and keeps what it received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer: dict[str, Any] | None = None
        self.lock = threading.Lock()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                verified = SignatureVerifier(SECRET).is_valid_request(raw, dict(self.headers))
                with bot.lock:
                    bot.received.append({"raw": raw, "verified": verified,
                                         "content_type": self.headers["Content-Type"]})
                data = json.dumps(bot.answer).encode() if bot.answer else b""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def last(self) -> dict[str, Any]:
        """The last request, decoded as the bot would (form, payload JSON, or event JSON)."""
        with self.lock:
            request = self.received[-1]
        if request["content_type"].startswith("application/json"):
            return json.loads(request["raw"])
        form = {k: v[-1] for k, v in parse_qs(request["raw"].decode()).items()}
        return json.loads(form["payload"]) if "payload" in form else form


class NoControls:
    def clock_state(self) -> dict[str, Any]:
        return {"offset_seconds": 0, "now": "2026-11-30T10:00:00Z"}

    def advance(self, seconds: float) -> dict[str, Any]:
        return {"clock": self.clock_state()}

    def run_jobs(self) -> dict[str, Any]:
        return {"clock": self.clock_state(), "jobs": {}}


@pytest.fixture()
def bot() -> Iterator[RecordingBot]:
    with RecordingBot() as recording:
        yield recording


@pytest.fixture()
def slack(bot: RecordingBot) -> Iterator[SandboxSlack]:
    workspace = SandboxSlack(events_url=f"http://127.0.0.1:{bot.port}/slack/events",
                             signing_secret=SECRET, token=TOKEN)
    workspace.page = Page(workspace, NoControls())
    with workspace:
        yield workspace


@pytest.fixture()
def client(slack: SandboxSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.base_url)


@pytest.fixture()
def page(slack: SandboxSlack) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{slack.port}", timeout=10)


def test_a_slash_command_is_signed_and_shaped_as_slacks_and_its_answer_is_the_persons_alone(
        bot: RecordingBot, slack: SandboxSlack, page: httpx.Client) -> None:
    bot.answer = {"text": "Got it: ticket #1"}
    assert page.post("/sandbox/send", json={"user": "UREQ", "channel": "CHELPDESK",
                                            "text": "/ticket printer jam"}).json()["ok"]
    assert bot.received[-1]["verified"]
    form = bot.last()
    assert (form["command"], form["text"], form["user_id"], form["channel_id"], form["team_id"]) == (
        "/ticket", "printer jam", "UREQ", "CHELPDESK", people.TEAM_ID)
    assert form["trigger_id"] and form["response_url"].startswith(f"http://127.0.0.1:{slack.port}/")
    mine = page.get("/sandbox/state", params={"user": "UREQ"}).json()["messages"]["CHELPDESK"]
    assert [(m["text"], m["ephemeral"]) for m in mine] == [("Got it: ticket #1", True)]
    theirs = page.get("/sandbox/state", params={"user": "UTEAM"}).json()["messages"]["CHELPDESK"]
    assert theirs == []

    # A later answer through the command's response URL replaces that one in place.
    httpx.post(form["response_url"], json={"replace_original": True, "text": "Ticket #1 is with Network"})
    mine = page.get("/sandbox/state", params={"user": "UREQ"}).json()["messages"]["CHELPDESK"]
    assert [m["text"] for m in mine] == ["Ticket #1 is with Network"]


def test_a_message_and_a_mention_are_events_and_a_dm_is_message_im(
        bot: RecordingBot, slack: SandboxSlack, page: httpx.Client) -> None:
    page.post("/sandbox/send", json={"user": "UREQ", "channel": "CHELPDESK", "text": "hello @ResolveMeQ"})
    kinds = [json.loads(r["raw"])["event"] for r in bot.received]
    assert [e["type"] for e in kinds] == ["message", "app_mention"]
    assert kinds[1]["text"] == f"hello <@{people.BOT_USER_ID}>"  # as Slack's client writes a mention
    document = bot.last()
    assert document["type"] == "event_callback" and document["event_id"] and document["event_time"]
    assert all(r["verified"] for r in bot.received)

    page.post("/sandbox/send", json={"user": "UREQ", "channel": "DUREQ", "text": "my wifi"})
    event = bot.last()["event"]
    assert (event["channel"], event["channel_type"], event["text"]) == ("DUREQ", "im", "my wifi")


def test_a_trigger_id_opens_one_modal_for_the_person_who_clicked(
        bot: RecordingBot, slack: SandboxSlack, client: WebClient, page: httpx.Client) -> None:
    posted = client.chat_postMessage(channel="CHELPDESK", text="Did it work?", blocks=[
        {"type": "actions", "block_id": "feedback", "elements": [
            {"type": "button", "action_id": "feedback_no", "value": "t=1",
             "text": {"type": "plain_text", "text": "No"}}]}])
    assert page.post("/sandbox/click", json={
        "user": "UREQ", "channel": "CHELPDESK", "message_ts": posted["ts"], "action_id": "feedback_no",
        "block_id": "feedback", "value": "t=1"}).json()["ok"]
    payload = bot.last()
    assert payload["type"] == "block_actions" and payload["container"]["message_ts"] == posted["ts"]
    assert payload["message"]["text"] == "Did it work?" and payload["actions"][0]["value"] == "t=1"
    view = {"type": "modal", "callback_id": "why", "title": {"type": "plain_text", "text": "Why?"},
            "notify_on_close": True, "blocks": [
                {"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Why"},
                 "element": {"type": "plain_text_input", "action_id": "reason"}}]}
    opened = client.views_open(trigger_id=payload["trigger_id"], view=view)["view"]
    with pytest.raises(SlackApiError) as used:
        client.views_open(trigger_id=payload["trigger_id"], view=view)
    assert used.value.response["error"] == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as made_up:
        client.views_open(trigger_id="123.456.abc", view=view)
    assert made_up.value.response["error"] == "invalid_trigger_id"

    assert page.get("/sandbox/state", params={"user": "UREQ"}).json()["modal"]["view_id"] == opened["id"]
    assert page.get("/sandbox/state", params={"user": "UTEAM"}).json()["modal"] is None

    # The bot's errors stay on the modal; a plain answer closes it.
    bot.answer = {"response_action": "errors", "errors": {"reason": "Say a little more"}}
    answer = page.post("/sandbox/submit", json={"user": "UREQ", "view_id": opened["id"],
                                                "values": {"reason": {"reason": "x"}}}).json()
    assert answer == {"ok": True, "errors": {"reason": "Say a little more"}}
    submitted = bot.last()
    assert submitted["type"] == "view_submission" and submitted["view"]["callback_id"] == "why"
    assert submitted["view"]["state"]["values"] == {"reason": {"reason": {"type": "plain_text_input",
                                                                          "value": "x"}}}
    bot.answer = None
    page.post("/sandbox/submit", json={"user": "UREQ", "view_id": opened["id"],
                                       "values": {"reason": {"reason": "It still drops"}}})
    assert page.get("/sandbox/state", params={"user": "UREQ"}).json()["modal"] is None


def test_closing_a_modal_that_asked_sends_view_closed(
        bot: RecordingBot, slack: SandboxSlack, client: WebClient, page: httpx.Client) -> None:
    page.post("/sandbox/send", json={"user": "UADMIN", "channel": "CHELPDESK", "text": "/autonomy status"})
    trigger = bot.last()["trigger_id"]
    view = client.views_open(trigger_id=trigger, view={
        "type": "modal", "callback_id": "c", "notify_on_close": True,
        "title": {"type": "plain_text", "text": "T"}, "blocks": []})["view"]
    assert page.post("/sandbox/close", json={"user": "UADMIN", "view_id": view["id"]}).json()["ok"]
    assert bot.last()["type"] == "view_closed"
    assert page.get("/sandbox/state", params={"user": "UADMIN"}).json()["modal"] is None


def test_a_reaction_and_a_shortcut_reach_the_bot_as_slack_sends_them(
        bot: RecordingBot, slack: SandboxSlack, page: httpx.Client) -> None:
    sent = page.post("/sandbox/send", json={"user": "UREQ", "channel": "CHELPDESK", "text": "wifi down"})
    ts = sent.json()["ts"]
    page.post("/sandbox/react", json={"user": "UTEAM", "channel": "CHELPDESK", "ts": ts, "name": "ticket"})
    event = bot.last()["event"]
    assert (event["type"], event["reaction"], event["item"], event["item_user"]) == (
        "reaction_added", "ticket", {"type": "message", "channel": "CHELPDESK", "ts": ts}, "UREQ")
    shown = page.get("/sandbox/state", params={"user": "UREQ"}).json()["messages"]["CHELPDESK"]
    assert shown[0]["reactions"] == [{"name": "ticket", "users": ["UTEAM"]}]

    page.post("/sandbox/shortcut", json={"user": "UTEAM", "channel": "CHELPDESK", "ts": ts,
                                         "callback_id": "create_ticket"})
    shortcut = bot.last()
    assert (shortcut["type"], shortcut["callback_id"], shortcut["message"]["text"]) == (
        "message_action", "create_ticket", "wifi down")
    assert shortcut["trigger_id"] and shortcut["response_url"]


def test_home_opened_and_the_event_stream(bot: RecordingBot, slack: SandboxSlack, client: WebClient,
                                          page: httpx.Client) -> None:
    client.views_publish(user_id="UREQ", view={"type": "home", "blocks": []})
    page.post("/sandbox/home", json={"user": "UREQ"})
    event = bot.last()["event"]
    assert (event["type"], event["user"], event["tab"], event["view"]["type"]) == (
        "app_home_opened", "UREQ", "home", "home")
    assert page.get("/sandbox/state", params={"user": "UREQ"}).json()["home"]["type"] == "home"
    with page.stream("GET", "/sandbox/events") as stream:
        first = next(stream.iter_lines())
        assert first == f'data: {{"version": {slack.version}}}'


def test_the_guided_examples_do_what_their_labels_say(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    assert cli.main(["db", "upgrade"]) == 0
    expected = {"resolves": ("AUTO_RESOLVE", False), "routes": ("ASSIGN_TO_TEAM", False),
                "Critical": ("ESCALATE", True)}
    assert len(people.EXAMPLES) == 3
    for word, (action, critical) in expected.items():
        text = next(e["text"] for e in people.EXAMPLES if word in e["label"])
        capsys.readouterr()
        assert cli.main(["ask", "--json", text.removeprefix("/ticket ")]) == 0
        decided = json.loads(capsys.readouterr().out)
        assert (decided["action"], decided["critical"]) == (action, critical), text


def test_unread_counts_what_others_posted_since_the_person_last_looked(
        slack: SandboxSlack, client: WebClient, page: httpx.Client) -> None:
    def unread(user: str, read: str | None = None) -> dict[str, int]:
        params = {"user": user, **({"read": read} if read else {})}
        return {c["id"]: c["unread"] for c in page.get("/sandbox/state", params=params).json()["channels"]}

    client.chat_postMessage(channel="CHELPDESK", text="Welcome")
    page.post("/sandbox/send", json={"user": "UREQ", "channel": "CHELPDESK", "text": "hi all"})
    assert unread("UREQ")["CHELPDESK"] == 1  # the bot's, not their own
    assert unread("UTEAM")["CHELPDESK"] == 2
    assert unread("UREQ", read="CHELPDESK")["CHELPDESK"] == 0
    client.chat_postMessage(channel="UREQ", text="A DM")
    assert unread("UREQ") == {"CHELPDESK": 0, "DUREQ": 1}


def test_a_click_in_a_modal_carries_what_is_typed_so_far(
        bot: RecordingBot, slack: SandboxSlack, client: WebClient, page: httpx.Client) -> None:
    page.post("/sandbox/send", json={"user": "UREQ", "channel": "DUREQ", "text": "/ticket x"})
    view = client.views_open(trigger_id=bot.last()["trigger_id"], view={
        "type": "modal", "callback_id": "c", "title": {"type": "plain_text", "text": "T"}, "blocks": [
            {"type": "input", "block_id": "team", "label": {"type": "plain_text", "text": "Team"},
             "element": {"type": "static_select", "action_id": "pick", "options": [
                 {"text": {"type": "plain_text", "text": "Network"}, "value": "network"}]}},
            {"type": "actions", "block_id": "more", "elements": [
                {"type": "button", "action_id": "add",
                 "text": {"type": "plain_text", "text": "Add"}}]}]})["view"]
    page.post("/sandbox/click", json={"user": "UREQ", "view_id": view["id"], "action_id": "add",
                                      "block_id": "more", "values": {"team": {"pick": "network"}}})
    clicked = bot.last()
    assert clicked["container"] == {"type": "view", "view_id": view["id"]}
    assert clicked["view"]["state"]["values"]["team"]["pick"]["selected_option"]["value"] == "network"
    # Someone else cannot click in it.
    refused = page.post("/sandbox/click", json={"user": "UTEAM", "view_id": view["id"], "action_id": "add",
                                                "block_id": "more"})
    assert refused.status_code == 404
