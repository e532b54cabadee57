"""`resolvemeq sandbox`, driven through the page's API only (what the page sees and does):
the bot runs unchanged in its child process, on its own SQLite file, against the stand-in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.sandbox_process import PageClient, SandboxProcess, State, buttons, messages

REQUESTER, TEAM, ADMIN = "UREQ", "UTEAM", "UADMIN"
HELPDESK, IDENTITY, NETWORK = "CHELPDESK", "CTEAMIDENTITY", "CTEAMNETWORK"
DAY = 86400


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[SandboxProcess]:
    with SandboxProcess(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture()
def page(sandbox: SandboxProcess) -> PageClient:
    return sandbox.page


def example(page: PageClient, label_word: str) -> str:
    """The text of the guided first run's example whose label has `label_word`."""
    examples = page.state(REQUESTER)["examples"]
    assert len(examples) == 3
    return next(e["text"] for e in examples if label_word in e["label"])


def ask(page: PageClient, text: str, *, user: str = REQUESTER, channel: str = HELPDESK) -> int:
    """Send a /ticket as a person does; the ticket number the bot acknowledges with."""
    before = {m["ts"] for m in messages(page.state(user), channel)}
    page.send(user, channel, text)

    def acknowledged(state: State) -> int | None:
        for m in messages(state, channel):
            found = re.search(r"ticket #(\d+)", m["text"], re.IGNORECASE)
            if m["ts"] not in before and m["ephemeral"] and found:
                return int(found.group(1))
        return None

    return page.wait_for(user, acknowledged, f"the acknowledgement of {text!r}")


def message_with(channel: str, *words: str, button: str | None = None):
    """A finder: the latest message in `channel` with every word and, if named, the button."""
    def find(state: State) -> dict[str, Any] | None:
        for m in reversed(messages(state, channel)):
            if all(w in m["text"] for w in words) and (button is None or button in buttons(m)):
                return m
        return None
    return find


def click(page: PageClient, user: str, channel: str, message: dict[str, Any], action_id: str) -> None:
    button = buttons(message)[action_id]
    page.post("click", user=user, channel=channel, message_ts=message["ts"], action_id=action_id,
              block_id=button["block_id"], value=button.get("value", ""))


def fill_modal(page: PageClient, user: str, text: str) -> dict[str, Any]:
    """Type `text` into the open modal's first input and submit; the answer."""
    modal = page.wait_for(user, lambda s: s["modal"], "a modal")
    field = next(b for b in modal["view"]["blocks"] if b["type"] == "input")
    answer = page.post("submit", user=user, view_id=modal["view_id"],
                       values={field["block_id"]: {field["element"]["action_id"]: text}})
    assert answer["errors"] is None
    page.wait_for(user, lambda s: s["modal"] is None, "the modal close")
    return answer


def test_requester_asks_sees_the_answer_says_no_and_writes_why(page: PageClient) -> None:
    ticket = ask(page, example(page, "resolves"))
    answer = page.wait_for(REQUESTER, message_with(HELPDESK, f"#{ticket}", button="feedback_no"),
                           "the answer with Yes/No")
    assert {"feedback_yes", "feedback_no"} <= set(buttons(answer))
    assert not answer["ephemeral"]
    # The acknowledgement was for the requester alone.
    assert not [m for m in messages(page.state(TEAM), HELPDESK) if m["ephemeral"]]

    click(page, REQUESTER, HELPDESK, answer, "feedback_no")
    fill_modal(page, REQUESTER, "It still drops every five minutes on the train Wi-Fi")

    page.wait_for(REQUESTER, message_with(HELPDESK, f"#{ticket}", "reopened"), "the reopen notice")
    page.wait_for(TEAM, message_with(NETWORK, f"#{ticket}", button="team_take"),
                  "the reopened ticket in the network team's channel")


def test_team_member_takes_and_resolves_and_the_follow_up_comes_after_skip_ahead(page: PageClient) -> None:
    ticket = ask(page, example(page, "routes"))
    notice = page.wait_for(TEAM, message_with(IDENTITY, f"#{ticket}", button="team_take"),
                           "the ticket in #identity-access")
    # The requester is not in the team's channel.
    assert IDENTITY not in page.state(REQUESTER)["messages"]

    click(page, TEAM, IDENTITY, notice, "team_take")
    page.wait_for(REQUESTER, message_with(HELPDESK, f"#{ticket}", "<@UTEAM>"), "who took the ticket")

    notice = page.wait_for(TEAM, message_with(IDENTITY, f"#{ticket}", button="team_resolve"),
                           "the Resolve button")
    click(page, TEAM, IDENTITY, notice, "team_resolve")
    fill_modal(page, TEAM, "Added you to the Finance drive group")
    resolved = message_with(HELPDESK, f"#{ticket}", "Finance drive group", button="feedback_yes")
    page.wait_for(REQUESTER, resolved, "the resolution with Yes/No")

    dm = "DUREQ"
    assert not [m for m in messages(page.state(REQUESTER), dm) if f"#{ticket}" in m["text"]]
    moved = page.post("clock", advance_seconds=DAY)
    assert moved["clock"]["offset_seconds"] >= DAY
    follow_up = page.wait_for(REQUESTER, message_with(dm, f"#{ticket}", button="feedback_yes"),
                              "the follow-up DM")
    assert "feedback_no" in buttons(follow_up)


def test_admin_rolls_back_an_action_after_confirming(page: PageClient) -> None:
    ticket = ask(page, example(page, "Critical"))
    page.wait_for(REQUESTER, message_with(HELPDESK, f"#{ticket}", "critical"), "the escalation")

    page.send(ADMIN, HELPDESK, f"/history {ticket}")
    history = page.wait_for(ADMIN, message_with(HELPDESK, f"History of ticket #{ticket}"), "the history")
    action = re.search(r"`([0-9a-f]{8})`", str(history["blocks"]))
    assert action, history
    page.send(ADMIN, HELPDESK, f"/rollback {action.group(1)} trying the sandbox")
    confirm = page.wait_for(ADMIN, message_with(HELPDESK, action.group(1), button="rollback_confirm"),
                            "the confirm step")
    assert confirm["ephemeral"]
    # Nothing is undone before the admin confirms.
    assert not page.state(REQUESTER)["modal"]
    assert not message_with(HELPDESK, "rolled back")(page.state(REQUESTER))

    click(page, ADMIN, HELPDESK, confirm, "rollback_confirm")
    page.wait_for(ADMIN, message_with(HELPDESK, "Rolled back", action.group(1)), "the admin's confirmation")
    told = page.wait_for(REQUESTER, message_with(HELPDESK, "rolled back"),
                         "the rollback in the ticket's thread")
    assert told["thread_ts"] is not None


def test_the_page_api_refuses_what_a_page_cannot_do(page: PageClient) -> None:
    # A clear message, nothing half-done.
    answer = page.http.post("/sandbox/send", json={"user": REQUESTER, "channel": "CALERTS", "text": "hi"})
    assert answer.status_code == 400 and "not in channel" in answer.json()["error"]
    answer = page.http.post("/sandbox/send", json={"user": "UNOBODY", "channel": HELPDESK, "text": "hi"})
    assert answer.status_code == 400 and answer.json()["ok"] is False
    answer = page.http.post("/sandbox/submit", json={"user": REQUESTER, "view_id": "VNONE", "values": {}})
    assert answer.status_code == 404
    answer = page.http.post("/sandbox/clock", json={"advance_seconds": -5})
    assert answer.status_code == 400
