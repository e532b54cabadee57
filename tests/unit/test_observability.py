"""Sentry: configured as the contract says, and nothing secret or personal leaves.

Every test that starts Sentry hands it a capturing transport (no network) and closes it
afterwards, so no other test file ever runs with a live Sentry client.
"""

from __future__ import annotations

import json
import logging
import re
import string
from datetime import UTC, datetime, timedelta

import pytest
import sentry_sdk
import time_machine
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sentry_sdk.transport import Transport

from bot.core import observability
from bot.core.observability import capture_alert, init_sentry, scrub_event, track_action
from bot.core.settings import load_settings
from models import ActionType, AlertRule

# The secrets live here, far from any function in a captured stack, so that source
# context lines (which Sentry sends) never show them: the test is about runtime values.
DSN = "https://publickey@o0.ingest.sentry.io/0"
BOT_TOKEN = "xoxb-123-secret-abc"
SIGNING_SECRET = "sig-secret-value"
APP_TOKEN = "xapp-1-A0-secret"
USER_NOTE = "user pasted xoxp-999-leak in text"
PASSWORD_TEXT = "my password is hunter2"
PASSWORD = "hunter2"

SLACK_TOKEN = re.compile(r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
FORBIDDEN = ("xox", "xapp-", PASSWORD, SIGNING_SECRET)


class CapturingTransport(Transport):
    """Keeps every envelope instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list = []

    def capture_envelope(self, envelope) -> None:
        self.envelopes.append(envelope)

    def text(self) -> str:
        return b"".join(envelope.serialize() for envelope in self.envelopes).decode("utf-8")

    def events(self, kind: str = "event") -> list[dict]:
        return [item.payload.json for envelope in self.envelopes for item in envelope.items
                if item.type == kind]


def make_settings(**overrides):
    values = {"database_url": "sqlite://", "sentry_dsn": DSN, "slack_bot_token": BOT_TOKEN,
              "slack_signing_secret": SIGNING_SECRET, "environment": "staging",
              "app_version": "9.9.9"}
    values.update(overrides)
    return load_settings(**values)


def shut_sentry_down() -> None:
    sentry_sdk.get_client().close()
    scope = sentry_sdk.get_global_scope()
    scope.set_client(None)
    scope.remove_tag("component")


@pytest.fixture(autouse=True)
def sentry_left_off(monkeypatch):
    """Each test starts and ends with no live client and no remembered secrets."""
    monkeypatch.setattr(observability, "_secrets", frozenset())
    # And no decision reported in the last minute (the once-a-minute limiter's memory).
    monkeypatch.setattr(observability, "_reports", observability._OncePerWindow(
        observability.REPORT_WINDOW))
    assert not sentry_sdk.get_client().is_active()
    # A fresh scope pair: tags and breadcrumbs set by one test stay in it.
    with sentry_sdk.isolation_scope(), sentry_sdk.new_scope():
        yield
    shut_sentry_down()
    assert not sentry_sdk.get_client().is_active()


@pytest.fixture()
def sentry() -> CapturingTransport:
    transport = CapturingTransport()
    assert init_sentry(make_settings(), component="worker", transport=transport) is True
    return transport


# -- what the configuration is ---------------------------------------------------------


def test_environment_release_component_and_sampling_are_set(sentry):
    sentry_sdk.capture_message("hello")
    (event,) = sentry.events()
    assert event["environment"] == "staging"
    assert event["release"] == "9.9.9"
    assert event["tags"]["component"] == "worker"
    options = sentry_sdk.get_client().options
    assert options["traces_sample_rate"] == 0.1
    assert options["max_request_body_size"] == "never"
    # Locals off: what people typed sits in them under any name (bot/core/observability).
    assert options["include_local_variables"] is False
    assert not options["send_default_pii"]
    assert options["before_send"] is scrub_event
    assert options["before_send_transaction"] is scrub_event
    assert options["before_breadcrumb"] is not None
    installed = set(sentry_sdk.get_client().integrations)
    # The three we list, and Sentry's defaults still there (dedupe, excepthook, ...).
    assert {"logging", "celery", "sqlalchemy", "dedupe", "excepthook"} <= installed
    celery = sentry_sdk.get_client().integrations["celery"]
    assert celery.monitor_beat_tasks is False


def test_without_a_dsn_nothing_starts_and_nothing_is_sent():
    transport = CapturingTransport()
    for dsn in (None, ""):
        assert init_sentry(make_settings(sentry_dsn=dsn), component="cli",
                           transport=transport) is False
    assert not sentry_sdk.get_client().is_active()
    sentry_sdk.capture_message("nobody hears this")
    logging.getLogger("resolvemeq.test").error("nor this")
    track_action(ActionType.ESCALATE, autonomous=True, success=True, confidence=0.5)
    capture_alert(AlertRule.FAILURE_RATE, "nor this alert", level="error", value=0.5)
    assert transport.envelopes == []


def test_a_second_init_keeps_the_first_client_and_sends_once():
    first, second = CapturingTransport(), CapturingTransport()
    assert init_sentry(make_settings(), component="serve", transport=first)
    client = sentry_sdk.get_client()
    assert init_sentry(make_settings(), component="worker", transport=second)
    assert sentry_sdk.get_client() is client
    logging.getLogger("resolvemeq.test").error("one failure")
    _capture(_fail_with_secrets_in_locals)
    assert len(first.events()) == 2
    assert second.envelopes == []
    assert first.events()[0]["tags"]["component"] == "serve"


def test_init_again_after_close_starts_a_new_client():
    first, second = CapturingTransport(), CapturingTransport()
    assert init_sentry(make_settings(), component="cli", transport=first)
    sentry_sdk.get_client().close()
    assert init_sentry(make_settings(), component="cli", transport=second)
    sentry_sdk.capture_message("after restart")
    assert first.envelopes == [] and len(second.events()) == 1


# -- what leaves the process -----------------------------------------------------------


def test_an_exception_with_secrets_in_locals_sends_no_locals_and_a_scrubbed_message(sentry):
    _capture(_fail_with_secrets_in_locals)
    text = sentry.text()
    for forbidden in FORBIDDEN:
        assert forbidden not in text
    # A password under a name no scrubber knows: locals are not sent at all.
    assert "P4ss-in-a-plain-local" not in text
    (event,) = sentry.events()
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"].startswith("Slack refused [Filtered]")
    frames = exception["stacktrace"]["frames"]
    # Still a useful trace: where, and which line.
    assert frames[-1]["function"] == "_fail_with_secrets_in_locals"
    assert "raise RuntimeError" in frames[-1]["context_line"]
    assert not any(frame.get("vars") for frame in frames)


def test_a_database_error_from_any_engine_loses_its_row_data(sentry):
    # What an engine without hide_parameters raises (the review's example): the
    # parameters, the failing row and the statement excerpt go, the rest stays.
    message = ("(psycopg2.errors.CheckViolation) new row for relation \"tickets\" violates "
               "check constraint \"ck\"\nDETAIL:  Failing row contains (1, my vpn password is "
               "Hunter2!, new).\n\n[SQL: INSERT INTO tickets (description) VALUES (%(d)s)]\n"
               "[parameters: (1, 'my vpn password is Hunter2!', 'new')]\n"
               "LINE 1: INSERT INTO tickets VALUES ('my vpn password is Hunter2!')")
    logging.getLogger("resolvemeq.test").error("could not store the ticket: %s", message)
    (event,) = sentry.events()
    assert "Hunter2" not in sentry.text()
    shown = event["logentry"]["params"][0]
    assert "violates check constraint" in shown and "[SQL: INSERT INTO tickets" in shown
    assert "[parameters: [Filtered]]" in shown and "DETAIL:  [Filtered]" in shown


def test_database_and_redis_passwords_are_secrets():
    transport = CapturingTransport()
    init_sentry(make_settings(database_url="postgresql+psycopg2://bot:pg-Pa55-never-sent@db/rq",
                              redis_url="redis://:redis-Pa55-never-sent@cache:6379/0"),
                component="worker", transport=transport)
    logging.getLogger("resolvemeq.test").error(
        "cannot connect: pg-Pa55-never-sent, then redis-Pa55-never-sent")
    assert "Pa55" not in transport.text() and len(transport.events()) == 1


def test_an_error_log_with_a_token_is_scrubbed(sentry):
    logging.getLogger("resolvemeq.test").error(
        "Slack call failed with %s (signing %s)", BOT_TOKEN, SIGNING_SECRET)
    logging.getLogger("resolvemeq.test").error(f"auth failed for {APP_TOKEN}")
    text = sentry.text()
    for forbidden in FORBIDDEN:
        assert forbidden not in text
    events = sentry.events()
    assert len(events) == 2
    assert "Slack call failed with" in json.dumps(events[0]["logentry"])


def test_breadcrumbs_with_tokens_are_scrubbed(sentry):
    logger = logging.getLogger("resolvemeq.test.crumbs")
    logger.setLevel(logging.INFO)
    try:
        logger.info("posting with %s", BOT_TOKEN)
    finally:
        logger.setLevel(logging.NOTSET)
    sentry_sdk.add_breadcrumb(
        category="slack", message=f"retry {USER_NOTE}",
        data={"token": "abc", "text": PASSWORD_TEXT, "url": f"https://x/?t={APP_TOKEN}",
              "status": 429},
    )
    sentry_sdk.capture_message("something went wrong")
    text = sentry.text()
    for forbidden in FORBIDDEN:
        assert forbidden not in text
    crumbs = sentry.events()[0]["breadcrumbs"]["values"]
    slack = next(crumb for crumb in crumbs if crumb.get("category") == "slack")
    assert slack["data"]["status"] == 429
    assert slack["data"]["token"] == slack["data"]["text"] == "[Filtered]"
    assert any(crumb.get("message") == "posting with [Filtered]" for crumb in crumbs)


def test_transactions_are_scrubbed(sentry):
    with sentry_sdk.start_transaction(name=f"ticket {BOT_TOKEN}", op="task", sampled=True):
        pass
    (transaction,) = sentry.events("transaction")
    assert transaction["transaction"] == "ticket [Filtered]"
    assert "xox" not in sentry.text()


def test_a_decision_leaves_nothing_on_the_callers_scope(sentry):
    # The seed set these tags on the pooled thread's scope: every later, unrelated event
    # on that thread carried the last decision's action type.
    track_action(ActionType.AUTO_RESOLVE, autonomous=True, success=True, confidence=0.87)
    track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=0.9,
                 triage="cap_reached", ticket_id=7)
    sentry_sdk.capture_message("an unrelated error, later")
    report, later = sentry.events()
    assert report["tags"]["action_type"] == "ESCALATE"
    assert not {"action_type", "success", "autonomous", "confidence", "triage"} & set(later["tags"])
    assert "decision" not in later.get("contexts", {})


def test_a_successful_decision_sends_nothing(sentry):
    track_action(ActionType.AUTO_RESOLVE, autonomous=True, success=True, confidence=0.95)
    track_action(ActionType.REQUEST_CLARIFICATION, autonomous=True, success=True, confidence=0.4)
    assert sentry.events() == []


def test_a_triage_against_the_agents_advice_is_reported_with_its_tags(sentry):
    track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=0.87,
                 triage="cap_reached", ticket_id=41)
    (event,) = sentry.events()
    assert event["level"] == "warning"
    assert event["message"] == "A ticket went to people against the agent's advice: cap_reached"
    assert event["tags"] | {"component": "worker"} == {
        "component": "worker", "action_type": "ESCALATE", "success": "false",
        "autonomous": "false", "confidence": "0.9", "triage": "cap_reached"}
    assert event["contexts"]["decision"]["ticket_id"] == 41
    assert event["contexts"]["decision"]["confidence"] == 0.87
    assert event["fingerprint"] == ["decision", "cap_reached"]


def test_a_failed_autonomous_action_is_reported(sentry):
    track_action(ActionType.AUTO_RESOLVE, autonomous=True, success=False, confidence=0.93)
    (event,) = sentry.events()
    assert event["message"] == "An autonomous AUTO_RESOLVE failed"
    assert (event["tags"]["triage"], event["tags"]["success"]) == ("none", "false")


def test_reports_are_at_most_one_a_minute_per_reason(sentry):
    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):  # a full cap: every ticket is triaged
            track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=0.9,
                         triage="cap_reached")
        track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=None,
                     triage="agent_unavailable")
        clock.shift(timedelta(seconds=59))
        track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=0.9,
                     triage="cap_reached")
        clock.shift(timedelta(seconds=2))
        track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=0.9,
                     triage="cap_reached")
    assert [e["tags"]["triage"] for e in sentry.events()] == [
        "cap_reached", "agent_unavailable", "cap_reached"]


def test_a_deliberate_triage_is_not_reported(sentry):
    # Autonomy paused or in shadow mode: people chose it, nothing went wrong.
    track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=0.9,
                 triage="autonomy_paused", deliberate=True)
    assert sentry.events() == []


def test_background_work_leaves_nothing_on_its_pooled_thread(sentry):
    from bot.delivery.background import Background

    def sets_a_tag():
        sentry_sdk.set_tag("ticket", "41")
        sentry_sdk.add_breadcrumb(category="work", message="worked on ticket 41")

    pool = Background(1, queue_limit=2, name="scope-test")  # one thread: both tasks run on it
    try:
        pool.submit(sets_a_tag).result(timeout=5)
        pool.submit(sentry_sdk.capture_message, "the next task's error").result(timeout=5)
    finally:
        pool.shutdown()
    (event,) = sentry.events()
    assert "ticket" not in event["tags"]
    assert not any(c.get("category") == "work" for c in event.get("breadcrumbs", {}).get("values", []))


def test_track_action_before_init_leaves_nothing_behind():
    with sentry_sdk.new_scope():
        track_action(ActionType.ESCALATE, autonomous=False, success=False, confidence=None)
        transport = CapturingTransport()
        init_sentry(make_settings(), component="worker", transport=transport)
        sentry_sdk.capture_message("later")
    assert "action_type" not in transport.events()[0].get("tags", {})


def test_capture_alert_sends_a_message_grouped_by_rule(sentry):
    capture_alert(AlertRule.FAILURE_RATE, "Failure rate 12% in the last hour", level="warning",
                  value=0.12)
    capture_alert("agent_api_errors", "7 agent errors in 5 minutes", level="critical",
                  value=7)
    warning, critical = sentry.events()
    assert warning["tags"]["alert_rule"] == "failure_rate"
    assert warning["level"] == "warning"
    assert warning["message"] == "Failure rate 12% in the last hour"
    assert warning["fingerprint"] == ["alert", "failure_rate"]
    assert warning["contexts"]["alert"]["value"] == 0.12
    assert critical["level"] == "error"
    assert critical["tags"]["alert_rule"] == "agent_api_errors"


# -- scrub_event on its own ------------------------------------------------------------


def test_secret_keys_ticket_text_and_configured_secrets_are_removed(monkeypatch):
    monkeypatch.setattr(observability, "_secrets", frozenset({SIGNING_SECRET}))
    event = {
        "message": f"header was v0={SIGNING_SECRET}",
        "extra": {"Authorization": "Bearer abc", "slack_signing_secret": "x",
                  "DB_PASSWORD": "pw", "ticket": {"issue_type": "VPN", "category": "network",
                                                  "reopened_reason": PASSWORD_TEXT}},
        "request": {"headers": {"Cookie": "a=b", "X-Slack-Signature": "v0=ab"},
                    "data": {"payload": "{}"}},
        "tags": {"api_key": "k", "team": "Network"},
        "contexts": {"agent": {"agent_reasoning": PASSWORD_TEXT, "confidence": 0.9}},
    }
    cleaned = scrub_event(event, {})
    assert cleaned["message"] == "header was v0=[Filtered]"
    assert cleaned["extra"]["Authorization"] == cleaned["extra"]["DB_PASSWORD"] == "[Filtered]"
    assert cleaned["extra"]["ticket"] == {"issue_type": "[Filtered]", "category": "network",
                                          "reopened_reason": "[Filtered]"}
    assert cleaned["request"]["headers"] == {"Cookie": "[Filtered]",
                                             "X-Slack-Signature": "[Filtered]"}
    assert cleaned["request"]["data"]["payload"] == "[Filtered]"
    assert cleaned["tags"] == {"api_key": "[Filtered]", "team": "Network"}
    assert cleaned["contexts"]["agent"] == {"agent_reasoning": "[Filtered]", "confidence": 0.9}


def test_span_descriptions_stay_but_lose_tokens():
    event = {"type": "transaction", "spans": [
        {"description": "SELECT * FROM tickets WHERE ticket_id = %(id)s", "op": "db"},
        {"description": f"POST https://slack.com/api/x?token={BOT_TOKEN}",
         "data": {"text": PASSWORD_TEXT}},
    ], "extra": {"description": PASSWORD_TEXT}}
    cleaned = scrub_event(event, {})
    assert cleaned["spans"][0]["description"] == event["spans"][0]["description"]
    assert cleaned["spans"][1]["description"] == "POST https://slack.com/api/x?token=[Filtered]"
    assert cleaned["spans"][1]["data"]["text"] == "[Filtered]"
    assert cleaned["extra"]["description"] == "[Filtered]"


def test_cycles_and_deep_nesting_do_not_break_the_scrubber():
    cyclic: dict = {"note": USER_NOTE, "children": []}
    cyclic["children"].append(cyclic)
    cyclic["self"] = cyclic
    looped: list = [BOT_TOKEN]
    looped.append(looped)
    deep: list = [APP_TOKEN]
    for _ in range(5000):
        deep = [deep]
    cleaned = scrub_event({"extra": {"cyclic": cyclic, "looped": looped, "deep": deep},
                           "message": BOT_TOKEN}, {})
    assert isinstance(cleaned, dict)
    assert cleaned["message"] == "[Filtered]"
    assert cleaned["extra"]["cyclic"]["self"] == "[Filtered]"
    assert cleaned["extra"]["cyclic"]["note"] == "user pasted [Filtered] in text"
    assert not any(SLACK_TOKEN.search(s) for s in _strings(cleaned))


def test_a_failing_scrub_sends_a_placeholder_not_the_event():
    class Exploding(dict):
        def items(self):
            raise ValueError("boom")

    event_id = "0123456789abcdef0123456789abcdef"
    cleaned = scrub_event({"event_id": event_id, "message": BOT_TOKEN,
                           "extra": Exploding(a=PASSWORD_TEXT)}, {})
    assert cleaned["tags"] == {"scrub_failed": "true"}
    assert cleaned["event_id"] == event_id
    assert BOT_TOKEN not in json.dumps(cleaned) and PASSWORD not in json.dumps(cleaned)
    assert scrub_event(["not", "an", "event", BOT_TOKEN], None)["tags"] == {"scrub_failed": "true"}


_token_text = st.builds(
    lambda before, kind, body, after: f"{before}{kind}{body}{after}",
    st.text(max_size=6),
    st.sampled_from(["xoxb-", "xoxp-", "xoxa-", "xoxo-", "xoxs-", "xoxr-", "xapp-"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=24),
    st.text(max_size=6),
)
_strings_st = st.one_of(st.text(max_size=12), _token_text)
_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _strings_st,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_strings_st, children, max_size=4),
    max_leaves=25,
)


@hsettings(max_examples=300, deadline=None)
@given(extra=_json_like, message=_strings_st)
def test_scrub_event_never_raises_and_no_token_survives(extra, message):
    cleaned = scrub_event({"message": message, "extra": {"value": extra},
                           "breadcrumbs": {"values": [{"data": extra}]}}, {})
    assert isinstance(cleaned, dict)
    assert not any(SLACK_TOKEN.search(s) for s in _strings(cleaned))


# -- helpers (kept apart from the secrets above: their source lines go to Sentry) -----


def _capture(fn) -> None:
    try:
        fn()
    except RuntimeError:
        sentry_sdk.capture_exception()


def _fail_with_secrets_in_locals() -> None:
    bot_token = BOT_TOKEN
    app_token = APP_TOKEN
    note = USER_NOTE
    description = PASSWORD_TEXT  # noqa: F841 (read from the frame's locals by Sentry)
    blob = "signing=" + SIGNING_SECRET  # a name no key-based scrubber would catch
    words = "P4ss-in-a-plain-" + "local"  # noqa: F841 (what a person typed, in a local)
    count = 3
    raise RuntimeError(f"Slack refused {bot_token} ({app_token}, {note}, {blob}, {count})")


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


# -- the app's use of it ---------------------------------------------------------------

def test_an_unexpected_listener_error_reaches_sentry_once_with_its_error_id(sentry):
    from slack_bolt import BoltContext

    from handlers.errors import on_error

    try:
        raise RuntimeError("listener blew up near xoxb-123-secret-abc")
    except RuntimeError as error:
        response = on_error(error, {}, BoltContext())
    sentry_sdk.flush()
    assert response.status == 200  # Slack must not retry what failed
    [event] = sentry.events()
    assert event["tags"]["error_id"]
    assert "xoxb-" not in sentry.text()
