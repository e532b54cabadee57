"""Duplicated, reordered and malformed deliveries, end to end.

Slack retries what it thinks was lost, people double-click, networks reorder; and a
signed request can carry anything in its fields. Against the real `resolvemeq serve`
(the shared `server` fixture): each delivery takes effect once, the outcome is the
requester's last answer as the server received them, and no input gets a 5xx, a
traceback in the response, or a half-written ticket.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
import uuid
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.sandbox import signing
from bot.views import ActionId, feedback_value, rating_action_id
from bot.views.escape import from_slack_text
from models import ActionType, AuditEvent, Ticket, TicketResolution, TicketStatus
from tests.support.faults import (
    VPN,
    about,
    actions_of,
    answered,
    assert_consistent,
    count,
    no_secret_in_any_server_log,
    resolution_of,
    secrets_of,
    seed_resolved_ticket,
    tickets,
    watch,
)
from tests.support.harness import (
    CHANNEL,
    ESCALATIONS,
    REQUESTER,
    STRANGER,
    TEAM_ID,
    barrier,
    shown,
    wait_until,
)

assert no_secret_in_any_server_log  # the session-wide log scan, for this module's server too


@pytest.fixture(scope="module", autouse=True)
def _scan_the_servers_log(server):
    watch(f"serve on port {server.port}", server.text, secrets_of(server.env))


def _settled(e2e, slack, e2e_sessions) -> None:
    """Every ticket decided and the work of every request so far started (a barrier)."""
    wait_until(lambda: not [t for t in tickets(e2e_sessions) if t.status == TicketStatus.NEW], timeout=30,
               what="every ticket decided")
    barrier(e2e, slack)


# ----- the same delivery, many times -----------------------------------------------------


def test_one_event_delivered_three_times_at_once_opens_one_ticket_answered_once(
        e2e, slack, e2e_sessions):
    event = {"type": "app_mention", "user": REQUESTER, "channel": CHANNEL,
             "text": f"<@UBOT> {VPN}", "ts": "1732528000.000100"}
    gate, statuses = threading.Barrier(3), []

    def deliver(retry):
        gate.wait()
        statuses.append(e2e.event(event, event_id="Ev0THRICE01", retry=retry).status_code)

    threads = [threading.Thread(target=deliver, args=(retry,)) for retry in (None, 1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    assert statuses == [200, 200, 200]
    [ticket] = tickets(e2e_sessions)
    answered(e2e_sessions, ticket.ticket_id)
    _settled(e2e, slack, e2e_sessions)
    assert len(actions_of(e2e_sessions, ticket.ticket_id)) == 1
    assert len([c for c in slack.calls("chat.postMessage") if about(ticket.ticket_id)(c.args)]) == 1
    assert len(slack.messages(CHANNEL)) == 1


# ----- reordered and repeated clicks -----------------------------------------------------


def _answer_shown(slack, ts: str) -> str:
    [message] = [m for m in slack.messages(CHANNEL) if m["ts"] == ts]
    return shown(message)


def _posted_answer(e2e, slack, e2e_sessions) -> tuple[int, str]:
    """A /ticket answered in the channel: (ticket id, ts of the answer)."""
    assert e2e.command("/ticket", VPN).status_code == 200
    [ticket] = tickets(e2e_sessions)
    return ticket.ticket_id, answered(e2e_sessions, ticket.ticket_id).slack_message_ts


def _click(e2e, ticket_id: int, ts: str, what):
    if what is True or what is False:
        action = ActionId.FEEDBACK_YES if what else ActionId.FEEDBACK_NO
        response = e2e.click(action, feedback_value(ticket_id), message_ts=ts)
    else:
        response = e2e.click(rating_action_id(what), feedback_value(ticket_id, score=what),
                             message_ts=ts)
    assert response.status_code == 200


def test_stars_before_yes_and_repeats_each_count_once(e2e, slack, e2e_sessions):
    ticket_id, ts = _posted_answer(e2e, slack, e2e_sessions)
    # In the order the server receives them; each change's message update is awaited
    # before the next click (the race between updates has its own test below).
    for what, updates in ((4, 1), (4, 1), (True, 2), (4, 2), (True, 2)):
        _click(e2e, ticket_id, ts, what)
        slack.wait_for("chat.update", count=updates)
    _settled(e2e, slack, e2e_sessions)

    resolution = resolution_of(e2e_sessions, ticket_id)
    assert (resolution.resolution_confirmed, resolution.satisfaction_score) == (True, 4)
    assert len(slack.calls("chat.update")) == 2  # one per change, none per repeat
    assert [a.action_type for a in actions_of(e2e_sessions, ticket_id)] == [ActionType.AUTO_RESOLVE]
    assert count(e2e_sessions, AuditEvent) == 0
    on_screen = _answer_shown(slack, ts)
    assert "You said this solved it" in on_screen and "Rated 4/5" in on_screen


NO, YES = False, True


def _answer_updates(slack, ts):
    """Updates of the requester's answer (a reopen's team notice is redrawn too)."""
    return [c for c in slack.calls("chat.update") if c.args["ts"] == ts]


@pytest.mark.parametrize("arrivals", [
    # The requester clicked No, Yes, No; each click reached the server twice, out of order.
    (YES, NO, NO, NO, YES, NO),
    (NO, YES, NO, YES, NO, YES),
], ids=["ends-no", "ends-yes"])
def test_no_yes_no_out_of_order_and_twice_ends_in_the_last_answer_received(
        e2e, slack, e2e_sessions, arrivals):
    ticket_id, ts = _posted_answer(e2e, slack, e2e_sessions)
    # Only a change of answer does anything: count what each arrival should do. Each
    # change's message update is awaited before the next click (the race between
    # updates has its own test below).
    state, changes, expected_actions = None, 0, [ActionType.AUTO_RESOLVE]
    for solved in arrivals:
        _click(e2e, ticket_id, ts, solved)
        if solved is not state:
            changes += 1
            if state is not None or not solved:
                expected_actions.append(ActionType.REOPEN if not solved else ActionType.CONFIRM)
            state = solved
        wait_until(lambda n=changes: len(_answer_updates(slack, ts)) >= n, what="the answer's update")
    reopens = expected_actions.count(ActionType.REOPEN)
    _settled(e2e, slack, e2e_sessions)

    last = arrivals[-1]
    resolution = resolution_of(e2e_sessions, ticket_id)
    [ticket] = tickets(e2e_sessions)
    assert resolution.resolution_confirmed is last
    assert ticket.status == (TicketStatus.RESOLVED if last else TicketStatus.OPEN)
    assert [a.action_type for a in actions_of(e2e_sessions, ticket_id)] == expected_actions
    with e2e_sessions() as session:
        changed = session.scalar(select(func.count()).where(AuditEvent.event_type == "feedback_changed"))
    assert changed == changes - 1
    # The answer was redrawn once per change (the team's notices are redrawn too, when
    # the ticket moves: not counted here).
    assert len(_answer_updates(slack, ts)) == changes
    # Each reopen told the thread and the escalation channel once; repeats told nobody.
    # The barrier says the last click's work has started, not that its posts are out
    # (with keep-alive connections its own reply can overtake them): wait for them.
    wait_until(lambda: len(slack.messages(ESCALATIONS)) >= reopens, what="the reopen notices")
    in_thread = [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == ts]
    assert len(in_thread) == reopens and len(slack.messages(ESCALATIONS)) == reopens
    on_screen = _answer_shown(slack, ts)
    assert ("You said this solved it" in on_screen) is last
    assert ("You said it did not" in on_screen) is (not last)
    assert_consistent(e2e_sessions)


def test_the_message_shows_the_last_answer_even_when_slack_is_slow_for_an_earlier_update(
        e2e, slack, e2e_sessions):
    ticket_id, ts = _posted_answer(e2e, slack, e2e_sessions)
    slack.delay("chat.update", 1.0)  # the first update is slow to land
    _click(e2e, ticket_id, ts, YES)
    _click(e2e, ticket_id, ts, NO)
    slack.wait_for("chat.update", count=2)
    _settled(e2e, slack, e2e_sessions)
    assert resolution_of(e2e_sessions, ticket_id).resolution_confirmed is False
    assert "You said it did not" in _answer_shown(slack, ts)


# ----- anything in the fields ------------------------------------------------------------

_TRICKY = st.sampled_from([
    "\u202eevil.exe\u202c", "שלום עולם", "مرحبا بالعالم", "\u200b", "\u200d\u200c\u2060\ufeff",
    "😀", "👩‍💻", "🏳️‍🌈", "\x00", "\x00\x00", "\r\n", "\t", "\x7f", "\x1b[31m", "e\u0301",
    "<!channel>", "&amp;", "%00", "\\u0000", "\ud7ff", "\U0010fffd", " ", "\u3000", "\u2028",
])
_FRAGMENT = _TRICKY | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_TEXT = st.one_of(
    st.lists(_FRAGMENT, max_size=8).map("".join),
    # Around the 4,000-character limit, and 10 KB.
    st.builds(lambda fragment, size: (fragment * size)[:size],
              _FRAGMENT.filter(bool), st.sampled_from([3999, 4000, 4001, 10_240])),
)
_WRONG_TYPE = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(),
                        st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                             st.integers(), max_size=2))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FUZZ = settings(max_examples=30, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _as_typed(text: str) -> str:
    """What a ticket keeps of a slash command's or message's text, as Slack sends it:
    Slack's escaping undone, control characters dropped, ends trimmed."""
    return _CONTROL.sub("", from_slack_text(text)).strip()


def _shows_something(text: str) -> bool:
    """Whether a person would see any character: not only spaces, separators, control
    and format characters (zero-width spaces, joiners, bidi marks, soft hyphens)."""
    return any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf", "Zs", "Zl", "Zp")
               for c in text)


def _no_crash(response) -> None:
    assert response.status_code < 500, response.text[:300]
    assert "Traceback" not in response.text and 'File "' not in response.text


def _send(e2e, raw: bytes | str, content_type: str):
    return e2e.post(raw, content_type=content_type)


@st.composite
def _slash_ticket(draw) -> tuple[dict, bool]:
    """A /ticket with tricky text, and sometimes missing fields or odd names."""
    fields = {"command": "/ticket", "text": draw(_TEXT), "user_id": REQUESTER, "team_id": TEAM_ID,
              "channel_id": CHANNEL, "trigger_id": f"trig-{uuid.uuid4().hex}",
              "user_name": draw(_TEXT), "channel_name": draw(_TEXT)}
    missing = draw(st.sets(st.sampled_from(["text", "user_id", "channel_id", "trigger_id",
                                            "user_name"]), max_size=2))
    for name in missing:
        del fields[name]
    return fields, not ({"text", "user_id"} & missing)


def test_slash_commands_with_any_text_or_missing_fields(e2e, slack, e2e_sessions):
    @_FUZZ
    @given(case=_slash_ticket())
    def check(case):
        fields, complete = case
        before = count(e2e_sessions, Ticket)
        response = _send(e2e, urlencode(fields), signing.FORM_CONTENT_TYPE)
        _no_crash(response)
        opened = count(e2e_sessions, Ticket) - before
        typed = _as_typed(fields.get("text", ""))
        if complete and _shows_something(typed) and len(typed) <= 4000:
            assert response.status_code == 200 and opened == 1, response.text[:300]
            assert re.search(r"ticket #\d+", response.json()["text"])
            newest = tickets(e2e_sessions)[-1]
            assert newest.description == typed
        else:
            assert opened == 0
            if complete:  # the person is told why, privately
                assert response.json()["response_type"] == "ephemeral"

    try:
        check()
    finally:
        _settled(e2e, slack, e2e_sessions)
    assert_consistent(e2e_sessions)


_USER = st.one_of(st.just({"id": REQUESTER}), st.just({"id": STRANGER}),
                  st.builds(lambda t: {"id": t}, _TEXT), _WRONG_TYPE)


@st.composite
def _click_payload(draw, ticket_id: int) -> tuple[dict, bool]:
    """A block_actions payload on the ticket's answer, with anything in its fields."""
    action_id = draw(st.sampled_from([*ActionId, *(rating_action_id(n) for n in range(1, 6))])
                     | _TEXT)
    rating = re.fullmatch(r"rate_([1-5])", str(action_id))
    valid_value = feedback_value(ticket_id, score=int(rating.group(1)) if rating else None)
    value = draw(st.just(valid_value) | _TEXT | _WRONG_TYPE)
    payload = signing.block_actions_payload(
        str(action_id), "", user_id=REQUESTER, channel_id=CHANNEL, team_id=TEAM_ID,
        message_ts="1732527000.000100")
    payload["actions"][0]["action_id"] = action_id
    payload["actions"][0]["value"] = value
    payload["user"] = draw(_USER)
    for name in draw(st.sets(st.sampled_from(["container", "channel", "message", "actions"]),
                             max_size=2)):
        payload[name] = draw(st.none() | _WRONG_TYPE | _TEXT)
    counts = (payload["user"] == {"id": REQUESTER} and value == valid_value
              and isinstance(payload.get("actions"), list))
    return payload, counts


def test_clicks_with_anything_in_their_fields(e2e, slack, e2e_sessions):
    ticket_id, _ = seed_resolved_ticket(e2e_sessions)

    def answer():
        found = resolution_of(e2e_sessions, ticket_id)
        return found.resolution_confirmed, found.satisfaction_score

    @_FUZZ
    @given(case=_click_payload(ticket_id))
    def check(case):
        payload, may_count = case
        before = answer()
        response = _send(e2e, signing.block_actions_body(payload),
                         signing.FORM_CONTENT_TYPE)
        _no_crash(response)
        if not may_count:
            assert answer() == before, json.dumps(payload, default=str)[:300]

    try:
        check()
    finally:
        _settled(e2e, slack, e2e_sessions)
    assert_consistent(e2e_sessions)


@st.composite
def _event(draw) -> tuple[dict, str]:
    """A DM or a mention with anything in its fields; returns it and its text."""
    kind = draw(st.sampled_from(["app_mention", "message"]))
    text_ = draw(_TEXT)
    event = {"type": kind, "user": REQUESTER, "channel": CHANNEL if kind == "app_mention" else "D0DM",
             "text": text_, "ts": "1732528000.000100", "event_ts": "1732528000.000100"}
    if kind == "message":
        event["channel_type"] = "im"
    for name in draw(st.sets(st.sampled_from(["user", "channel", "text", "ts", "channel_type"]),
                             max_size=2)):
        event[name] = draw(st.none() | _WRONG_TYPE | _TEXT)
    return event, text_


def test_events_with_anything_in_their_fields(e2e, slack, e2e_sessions):
    @_FUZZ
    @given(case=_event())
    def check(case):
        event, text_ = case
        before = count(e2e_sessions, Ticket)
        response = e2e.event(event)
        _no_crash(response)
        opened = count(e2e_sessions, Ticket) - before
        assert opened in (0, 1)
        if opened:
            assert isinstance(event["text"], str) and event["user"] == REQUESTER
            newest = tickets(e2e_sessions)[-1]
            assert newest.description == _as_typed(event["text"])
            assert _shows_something(newest.description)

    try:
        check()
    finally:
        _settled(e2e, slack, e2e_sessions)
    assert_consistent(e2e_sessions)
    with e2e_sessions() as session:  # every answered resolution is one the requester gave
        assert session.scalar(select(func.count()).select_from(TicketResolution).where(
            TicketResolution.response_received_at.is_not(None))) == 0
