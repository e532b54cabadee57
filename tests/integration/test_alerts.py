"""Alert rules: measured in PostgreSQL, fired once, repeated after the cooldown,
resolved when they clear, owed through the outbox and posted to the fake Slack exactly
once even with two evaluators, a Slack outage, or a commit lost after the decision; no
Slack call inside the evaluator's transaction; nothing evaluated without ALERTS_CHANNEL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.core.settings import Settings, load_settings
from bot.delivery import outbox
from bot.delivery.slack_client import make_web_client
from bot.domain import audit
from bot.domain.intake import open_ticket
from bot.domain.ratelimit import AutonomyBudget, make_storage
from bot.sandbox.standin import SlackStandIn
from bot.views.alerts import NoticeKind, alert_blocks, notice_text, pct, plural, span
from bot.workflows import alerts, periodic
from bot.workflows.alerts import Measurement, Notice, evaluate, measure_all, run_alerts
from bot.workflows.decision import decide_ticket
from models import (
    ActionHistory,
    ActionType,
    AgentCall,
    AlertRule,
    AlertState,
    OutboxPurpose,
    OutboxStatus,
    SlackOutbox,
    TicketResolution,
    TicketSource,
    make_engine,
    make_session_factory,
    transaction,
)
from tests.support.factories import make_action, make_ticket
from tests.support.scripted_agent import ScriptedAgent

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ALERTS = "CALERTS"
CRITICAL = "CCRITICAL"


# ----- data -------------------------------------------------------------------------

def answers(session: Session, *, no: int, yes: int = 0, at: datetime = NOW) -> None:
    """Answered auto-resolutions: `no` said it did not help, `yes` said it did."""
    for confirmed in [False] * no + [True] * yes:
        ticket = make_ticket(session, created_at=at)
        session.add(TicketResolution(
            ticket_id=ticket.ticket_id, autonomous_action=ActionType.AUTO_RESOLVE,
            resolution_confirmed=confirmed, response_received_at=at, created_at=at,
            updated_at=at,
        ))
    session.flush()


def autonomous_actions(session: Session, *, count: int, confidence: float,
                       at: datetime = NOW) -> None:
    for _ in range(count):
        make_action(session, action_type=ActionType.ESCALATE, confidence=confidence, now=at)


def agent_calls(session: Session, *, failed: int, ok: int = 0, at: datetime = NOW) -> None:
    for good in [False] * failed + [True] * ok:
        session.add(AgentCall(called_at=at, agent="http", ok=good, latency_ms=12.0,
                              error="" if good else "timeout"))
    session.flush()


def rollbacks(session: Session, *, count: int, at: datetime = NOW) -> None:
    # Direct rows, not autonomous: only the rollback rule may see them.
    ticket = make_ticket(session, created_at=at)
    for _ in range(count):
        session.add(ActionHistory(
            ticket_id=ticket.ticket_id, action_type=ActionType.ASSIGN_TO_TEAM, executed_at=at,
            executed_by="UADMIN", autonomous=False, confidence_score=None, rolled_back=True,
            rolled_back_at=at, rolled_back_by="UADMIN", rollback_reason="wrong team",
        ))
    session.flush()


def cap_events(session: Session, *, count: int, at: datetime = NOW) -> None:
    for _ in range(count):
        audit.record(session, audit.AUTONOMY_CAP_REACHED, actor_id=None,
                     detail={"cap": "per_hour"}, now=at)


def limiter_events(session: Session, *, count: int, at: datetime = NOW) -> None:
    """Decisions that found the limiter's store unreachable (as processing audits them)."""
    for _ in range(count):
        audit.record(session, audit.AUTONOMY_LIMITER_DOWN, actor_id=None, now=at)


def held_posts(session: Session, *, count: int, at: datetime = NOW,
               status: str = OutboxStatus.HELD) -> None:
    """Outbox rows Slack refused with a token error (the outbox holds them)."""
    for n in range(count):
        session.add(SlackOutbox(purpose=OutboxPurpose.NOTICE, channel="CHELP", text=f"post {n}",
                                status=status, attempts=0, next_attempt_at=at, created_at=at,
                                last_error="chat.postMessage: token_revoked"))
    session.flush()


def release_held(session: Session, at: datetime) -> None:
    """The token works again and every held post went out."""
    session.execute(update(SlackOutbox).where(SlackOutbox.status == OutboxStatus.HELD)
                    .values(status=OutboxStatus.SENT, sent_at=at))


def backups(session: Session, *, event_type: str, at: datetime = NOW) -> None:
    """A scheduled backup's outcome, as bot.workflows.backup_schedule records it."""
    audit.record(session, event_type, actor_id=None, now=at,
                 detail={"file": "/backups/resolvemeq-x.dump",
                         "problems": ["pg_restore failed: unexpected end of file"]
                         if event_type == audit.BACKUP_FAILED else []})


# Just enough to breach each rule at the default settings, 30 s before `at`.
BREACH: dict[str, Callable[[Session, datetime], None]] = {
    AlertRule.FAILURE_RATE: lambda s, at: answers(s, no=5, at=at - timedelta(seconds=30)),
    AlertRule.LOW_CONFIDENCE: lambda s, at: autonomous_actions(
        s, count=5, confidence=0.3, at=at - timedelta(seconds=30)),
    AlertRule.AGENT_ERRORS: lambda s, at: agent_calls(s, failed=6, at=at - timedelta(seconds=30)),
    AlertRule.ROLLBACKS: lambda s, at: rollbacks(s, count=21, at=at - timedelta(seconds=30)),
    AlertRule.AUTONOMY_CAP: lambda s, at: cap_events(s, count=1, at=at - timedelta(seconds=30)),
    AlertRule.LIMITER_DOWN: lambda s, at: limiter_events(s, count=1, at=at - timedelta(seconds=30)),
    AlertRule.POSTS_HELD: lambda s, at: held_posts(s, count=1, at=at - timedelta(seconds=30)),
    AlertRule.BACKUP_FAILED: lambda s, at: backups(s, event_type=audit.BACKUP_FAILED,
                                                   at=at - timedelta(seconds=30)),
}
# How a breach clears: windows pass on their own (every window is at most an hour);
# held posts stay until they are released.
CLEAR: dict[str, Callable[[Session, datetime], None]] = {
    AlertRule.POSTS_HELD: release_held,
    # A failed backup stays the newest until a backup verifies.
    AlertRule.BACKUP_FAILED: lambda s, at: backups(s, event_type=audit.BACKUP_VERIFIED, at=at),
}
# Exactly at each threshold: 10% failures, mean confidence 0.5, 5 errors, 20
# rollbacks; for the cap (any event fires) an event just older than its window.
AT_THRESHOLD: dict[str, tuple[Callable[[Session], None], float | None]] = {
    AlertRule.FAILURE_RATE: (lambda s: answers(s, no=1, yes=9), 0.1),
    AlertRule.LOW_CONFIDENCE: (lambda s: autonomous_actions(s, count=5, confidence=0.5), 0.5),
    AlertRule.AGENT_ERRORS: (lambda s: agent_calls(s, failed=5, ok=40), 5.0),
    AlertRule.ROLLBACKS: (lambda s: rollbacks(s, count=20), 20.0),
    AlertRule.AUTONOMY_CAP: (lambda s: cap_events(
        s, count=3, at=NOW - timedelta(minutes=15, seconds=1)), 0.0),
    AlertRule.LIMITER_DOWN: (lambda s: limiter_events(
        s, count=3, at=NOW - timedelta(minutes=15, seconds=1)), 0.0),
    # Posts that failed or wait out a backoff are not held.
    AlertRule.POSTS_HELD: (lambda s: (held_posts(s, count=2, status=OutboxStatus.FAILED),
                                      held_posts(s, count=2, status=OutboxStatus.PENDING)), 0.0),
    # Verified exactly two intervals ago: not yet stale.
    AlertRule.BACKUP_FAILED: (lambda s: backups(s, event_type=audit.BACKUP_VERIFIED,
                                                at=NOW - timedelta(hours=48)), 0.0),
}


# ----- fixtures -----------------------------------------------------------------------

@pytest.fixture()
def fake(slack: SlackStandIn) -> Iterator[SlackStandIn]:
    slack.reset()
    yield slack
    slack.reset()


@pytest.fixture()
def config(settings: Settings, fake: SlackStandIn, tmp_path) -> Settings:
    return load_settings(database_url=settings.database_url, slack_api_url=fake.base_url,
                         slack_bot_token=fake.token, alerts_channel=ALERTS,
                         critical_alerts_channel=CRITICAL, backup_dir=tmp_path)


@pytest.fixture()
def client(config: Settings):
    return make_web_client(config)


def state(factory, rule: str) -> AlertState:
    with transaction(factory) as db:
        return db.get(AlertState, rule)


def by_rule(measurements: list[Measurement]) -> dict[str, Measurement]:
    return {m.rule: m for m in measurements}


# ----- measurements -------------------------------------------------------------------

def test_nothing_happening_measures_quiet_in_rule_order(session, config):
    measured = measure_all(session, config, now=NOW)

    assert [m.rule for m in measured] == list(AlertRule)
    assert not any(m.breached for m in measured)
    assert by_rule(measured)[AlertRule.FAILURE_RATE] == Measurement(
        AlertRule.FAILURE_RATE, None, 0, False,
        "No answered resolutions over the last hour; threshold 10%")


def test_failure_rate_message_reads_like_a_report(session, config):
    answers(session, no=7, yes=23)

    m = by_rule(measure_all(session, config, now=NOW))[AlertRule.FAILURE_RATE]

    assert (m.breached, m.sample, m.value) == (True, 30, pytest.approx(7 / 30))
    assert m.message == ("Failure rate 23.33% over the last hour (7 of 30 answered "
                         "resolutions said No); threshold 10%")


def test_failure_rate_counts_only_answers_inside_the_window(session, config):
    answers(session, no=5, at=NOW - timedelta(hours=1, seconds=1))  # too old
    answers(session, no=5, at=NOW + timedelta(seconds=1))  # after `now`
    answers(session, no=1, yes=4, at=NOW - timedelta(hours=1))  # on the edge: counted
    make_action(session, now=NOW)  # resolved, nobody answered yet: not a sample

    m = by_rule(measure_all(session, config, now=NOW))[AlertRule.FAILURE_RATE]

    assert (m.sample, m.value, m.breached) == (5, 0.2, True)


def test_low_confidence_counts_only_autonomous_agent_actions(session, config):
    autonomous_actions(session, count=5, confidence=0.4)
    ticket = make_ticket(session)
    for action_type, autonomous in ((ActionType.ESCALATE, False), (ActionType.ROLLBACK, True)):
        session.add(ActionHistory(ticket_id=ticket.ticket_id, action_type=action_type,
                                  executed_at=NOW, autonomous=autonomous, confidence_score=0.0))
    session.flush()

    m = by_rule(measure_all(session, config, now=NOW))[AlertRule.LOW_CONFIDENCE]

    assert (m.sample, m.value, m.breached) == (5, 0.4, True)
    assert m.message == ("Mean confidence 40% over the last hour across 5 autonomous "
                         "actions; threshold 50%")


def test_count_rules_say_what_happened(session, config):
    agent_calls(session, failed=6, ok=100)
    rollbacks(session, count=21)
    cap_events(session, count=2)

    m = by_rule(measure_all(session, config, now=NOW))

    assert m[AlertRule.AGENT_ERRORS].message == (
        "6 agent API errors over the last 5 minutes; threshold 5")
    assert m[AlertRule.ROLLBACKS].message == "21 rollbacks over the last hour; threshold 20"
    assert m[AlertRule.AUTONOMY_CAP].message.startswith(
        "Autonomy cap reached 2 times over the last 15 minutes")
    assert all(m[r].breached for r in (AlertRule.AGENT_ERRORS, AlertRule.ROLLBACKS, AlertRule.AUTONOMY_CAP))


@pytest.mark.parametrize("rule", list(AlertRule))
def test_exactly_at_the_threshold_does_not_fire(session, config, rule):
    build, value = AT_THRESHOLD[rule]
    build(session)

    m = by_rule(measure_all(session, config, now=NOW))[rule]

    assert m.value == value
    assert not m.breached
    assert evaluate(session, config, now=NOW) == []


@pytest.mark.parametrize("rule", [AlertRule.FAILURE_RATE, AlertRule.LOW_CONFIDENCE])
def test_below_the_minimum_sample_nothing_fires(session, config, rule):
    if rule == AlertRule.FAILURE_RATE:
        answers(session, no=1)  # one failure out of one
    else:
        autonomous_actions(session, count=4, confidence=0.1)

    m = by_rule(measure_all(session, config, now=NOW))[rule]

    assert m.value in (1.0, 0.1) and not m.breached
    assert m.message.endswith("(not judged below 5 answers)" if rule == AlertRule.FAILURE_RATE
                              else "(not judged below 5 actions)")
    assert evaluate(session, config, now=NOW) == []


@pytest.mark.parametrize("rule,build", [
    (AlertRule.AGENT_ERRORS, lambda s: agent_calls(s, failed=1)),
    (AlertRule.ROLLBACKS, lambda s: rollbacks(s, count=1)),
])
def test_counts_need_no_minimum_sample(session, config, rule, build):
    strict = config.model_copy(update={"alert_agent_errors": 0, "alert_rollbacks": 0})
    build(session)

    assert [(n.rule, n.kind) for n in evaluate(session, strict, now=NOW)] == [(rule, NoticeKind.FIRING)]


# ----- the lifecycle of each rule, posted to the fake Slack ---------------------------

@pytest.mark.parametrize("rule", list(AlertRule))
def test_fires_once_holds_quiet_repeats_then_resolves(committing_factory, config, client,
                                                     fake, rule):
    critical = rule in (AlertRule.AGENT_ERRORS, AlertRule.POSTS_HELD)
    channel, other = (CRITICAL, ALERTS) if critical else (ALERTS, CRITICAL)
    cooldown = config.alert_cooldown

    def run(at: datetime, *, breach: bool) -> list[tuple[str, str]]:
        with transaction(committing_factory) as db:
            (BREACH[rule] if breach else CLEAR.get(rule, lambda *_: None))(db, at)
        notices = run_alerts(committing_factory, client, config, now=at)
        return [(n.rule, n.kind) for n in notices]

    assert run(NOW, breach=True) == [(rule, NoticeKind.FIRING)]
    if rule not in CLEAR:
        assert run(NOW + timedelta(minutes=1), breach=False) == []  # still holds (no new data)
    assert run(NOW + timedelta(minutes=30), breach=True) == []
    assert run(NOW + cooldown - timedelta(seconds=1), breach=True) == []
    assert run(NOW + cooldown, breach=True) == [(rule, NoticeKind.REPEAT)]
    assert run(NOW + cooldown + timedelta(minutes=1), breach=True) == []
    cleared = NOW + cooldown + timedelta(hours=2)  # every window is at most an hour
    assert run(cleared, breach=False) == [(rule, NoticeKind.RESOLVED)]
    assert run(cleared + timedelta(minutes=1), breach=False) == []

    posted = fake.messages(channel)
    assert [m["text"].split(":")[0] for m in posted] == ["Alert", "Still firing since 2026-11-25 09",
                                                        "Resolved"]
    assert posted[0]["blocks"] == alert_blocks(Notice(rule, channel, NoticeKind.FIRING, posted[0]["text"]))
    assert fake.messages(other) == []
    row = state(committing_factory, rule)
    assert (row.firing, row.first_fired_at, row.last_sent_at, row.resolved_at) == (
        False, NOW, NOW + cooldown, cleared)
    assert row.last_message.startswith(("No ", "0 ", "Autonomy cap not reached"))
    # Each notice was an outbox row, posted once and recorded so.
    with transaction(committing_factory) as db:
        rows = db.scalars(select(SlackOutbox).where(SlackOutbox.purpose == OutboxPurpose.ALERT)
                          .order_by(SlackOutbox.id)).all()
    assert [(r.status, r.channel, r.message_ts) for r in rows] == [
        (OutboxStatus.SENT, channel, m["ts"]) for m in posted]


def test_breach_after_a_resolve_fires_again(session, config):
    agent_calls(session, failed=6)
    assert [n.kind for n in evaluate(session, config, now=NOW)] == [NoticeKind.FIRING]
    assert [n.kind for n in evaluate(session, config, now=NOW + timedelta(minutes=10))] == [
        NoticeKind.RESOLVED]
    agent_calls(session, failed=6, at=NOW + timedelta(minutes=20))

    again = evaluate(session, config, now=NOW + timedelta(minutes=20))

    assert [(n.kind, n.channel) for n in again] == [(NoticeKind.FIRING, CRITICAL)]
    assert session.get(AlertState, AlertRule.AGENT_ERRORS).first_fired_at == (
        NOW + timedelta(minutes=20))


def test_agent_errors_fall_back_to_the_alerts_channel(session, settings):
    config = load_settings(database_url=settings.database_url, alerts_channel=ALERTS)
    agent_calls(session, failed=6)

    assert [n.channel for n in evaluate(session, config, now=NOW)] == [ALERTS]


# ----- restarts, concurrency, outages -------------------------------------------------

def test_state_survives_a_restart(committing_factory, config, client, fake, pg_url):
    with transaction(committing_factory) as db:
        rollbacks(db, count=21)
    assert len(run_alerts(committing_factory, client, config, now=NOW)) == 1

    engine = make_engine(pg_url)  # a new process: new engine, new sessions
    try:
        restarted = make_session_factory(engine)
        with transaction(restarted) as db:
            assert evaluate(db, config, now=NOW + timedelta(minutes=5)) == []
        assert run_alerts(restarted, client, config, now=NOW + timedelta(minutes=6)) == []
        with transaction(restarted) as db:
            rollbacks(db, count=21, at=NOW + timedelta(minutes=60))
        assert [n.kind for n in run_alerts(restarted, client, config,
                                           now=NOW + timedelta(minutes=61))] == [NoticeKind.REPEAT]
    finally:
        engine.dispose()
    assert len(fake.messages(ALERTS)) == 2


def test_two_concurrent_runs_post_once(committing_factory, config, client, fake):
    with transaction(committing_factory) as db:
        cap_events(db, count=1)
    barrier = threading.Barrier(2)
    results: list[list[Notice]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=5)
            results.append(run_alerts(committing_factory, client, config, now=NOW))
        except BaseException as error:  # surfaced below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(len(r) for r in results) == [0, 1]
    assert len(fake.messages(ALERTS)) == 1
    assert state(committing_factory, AlertRule.AUTONOMY_CAP).firing


def test_a_held_evaluator_lock_makes_a_run_do_nothing(committing_factory, config, client,
                                                      fake, pg_engine):
    with transaction(committing_factory) as db:
        cap_events(db, count=1)
    with pg_engine.connect() as other:
        with other.begin():
            other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": alerts.ALERTS_LOCK_KEY})
            assert run_alerts(committing_factory, client, config, now=NOW) == []
        assert fake.calls("chat.postMessage") == []

    assert len(run_alerts(committing_factory, client, config, now=NOW)) == 1


def test_state_rows_are_read_for_update(committing_factory, config, pg_engine):
    with transaction(committing_factory) as db:
        evaluate(db, config, now=NOW)  # creates the rows
    with pg_engine.connect() as other, other.begin():
        other.execute(text("SELECT rule FROM alert_state FOR UPDATE"))
        with pytest.raises(OperationalError, match="lock"):
            with transaction(committing_factory) as db:
                db.execute(text("SET LOCAL lock_timeout = '200ms'"))
                evaluate(db, config, now=NOW)


def alert_rows(factory) -> list[SlackOutbox]:
    with transaction(factory) as db:
        return db.scalars(select(SlackOutbox).where(SlackOutbox.purpose == OutboxPurpose.ALERT)
                          .order_by(SlackOutbox.id)).all()


def test_a_slack_outage_leaves_the_alert_owed_and_the_delivery_job_posts_it_once(
        committing_factory, config, client, fake):
    with transaction(committing_factory) as db:
        rollbacks(db, count=21)
    fake.fail_next("chat.postMessage", status=500, times=3)  # the client's 3 attempts

    fired = run_alerts(committing_factory, client, config, now=NOW)

    # Decided and recorded: the rule fires, and its post is owed, not lost.
    assert [(n.rule, n.kind) for n in fired] == [(AlertRule.ROLLBACKS, NoticeKind.FIRING)]
    assert fake.messages(ALERTS) == []
    assert state(committing_factory, AlertRule.ROLLBACKS).firing
    [row] = alert_rows(committing_factory)
    assert (row.status, row.attempts, row.claimed_until) == (OutboxStatus.PENDING, 1, None)
    assert row.next_attempt_at > NOW and row.last_error == "chat.postMessage: internal_error"
    # The next evaluation owes nothing new; the delivery job posts the one it owes.
    assert run_alerts(committing_factory, client, config, now=NOW + timedelta(minutes=1)) == []
    assert outbox.deliver(committing_factory, client, now=NOW + timedelta(minutes=1)) == 1
    assert outbox.deliver(committing_factory, client, now=NOW + timedelta(hours=2)) == 0
    [posted] = fake.messages(ALERTS)
    assert posted["text"].startswith("Alert: 21 rollbacks")
    assert posted["metadata"]["event_payload"] == {"outbox_id": row.id}


def test_an_outage_on_one_notice_does_not_hold_back_the_others(committing_factory, config,
                                                                client, fake):
    with transaction(committing_factory) as db:
        agent_calls(db, failed=6)
        cap_events(db, count=1)
    fake.fail_next("chat.postMessage", status=503, times=3)  # the first post's 3 attempts

    assert [n.rule for n in run_alerts(committing_factory, client, config, now=NOW)] == [
        AlertRule.AGENT_ERRORS, AlertRule.AUTONOMY_CAP]
    assert (len(fake.messages(CRITICAL)), len(fake.messages(ALERTS))) == (0, 1)

    assert outbox.deliver(committing_factory, client, now=NOW + timedelta(minutes=1)) == 1
    assert (len(fake.messages(CRITICAL)), len(fake.messages(ALERTS))) == (1, 1)
    assert run_alerts(committing_factory, client, config, now=NOW + timedelta(minutes=1)) == []


def test_a_permanent_refusal_is_recorded_failed_and_not_retried(committing_factory, config,
                                                                 client, fake):
    with transaction(committing_factory) as db:
        cap_events(db, count=1)
    fake.fail_next("chat.postMessage", error="channel_not_found")
    seen: list[Notice] = []

    posted = run_alerts(committing_factory, client, config, now=NOW, on_notice=seen.append)

    assert posted == seen and [n.kind for n in posted] == [NoticeKind.FIRING]
    assert state(committing_factory, AlertRule.AUTONOMY_CAP).firing
    [row] = alert_rows(committing_factory)
    assert (row.status, row.last_error) == (OutboxStatus.FAILED, "Slack refused the post")
    assert run_alerts(committing_factory, client, config, now=NOW) == []  # not re-decided
    assert outbox.deliver(committing_factory, client, now=NOW + timedelta(hours=3)) == 0
    assert len(fake.calls("chat.postMessage")) == 1


def test_on_notice_runs_after_the_commit_and_its_failure_changes_nothing(
        committing_factory, config, client, fake):
    with transaction(committing_factory) as db:
        cap_events(db, count=1)
    firing_seen: list[bool] = []

    def hook(notice: Notice) -> None:
        firing_seen.append(state(committing_factory, notice.rule).firing)  # committed already
        raise RuntimeError("sentry is down")

    assert len(run_alerts(committing_factory, client, config, now=NOW, on_notice=hook)) == 1
    assert firing_seen == [True]
    assert run_alerts(committing_factory, client, config, now=NOW) == []
    assert len(fake.messages(ALERTS)) == 1


# ----- point 4: decide and record in the transaction, post after the commit ------------

@pytest.fixture(params=["postgresql", "sqlite"])
def any_factory(request):
    """Real commits on PostgreSQL (tables emptied after) or on a new SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("committing_factory")
        return
    engine = make_engine(request.getfixturevalue("sqlite_url"))
    yield make_session_factory(engine)
    engine.dispose()


def test_a_commit_lost_after_the_decision_posts_nothing_and_the_next_run_posts_once(
        any_factory, config, client, fake):
    # A crash (or a lost connection) between the post and the commit used to post the
    # alert, forget it, and post it again on the next run.
    with transaction(any_factory) as db:
        cap_events(db, count=1)
    lost = [OperationalError("COMMIT", {}, Exception("server closed the connection"))]

    def lose_the_first_commit(session: Session) -> None:
        if lost:
            raise lost.pop()

    event.listen(any_factory, "before_commit", lose_the_first_commit)
    try:
        with pytest.raises(OperationalError):
            run_alerts(any_factory, client, config, now=NOW)
    finally:
        event.remove(any_factory, "before_commit", lose_the_first_commit)
    assert fake.messages(ALERTS) == []  # nothing posted for a decision that was not kept

    assert [n.kind for n in run_alerts(any_factory, client, config, now=NOW)] == [NoticeKind.FIRING]
    assert run_alerts(any_factory, client, config, now=NOW + timedelta(minutes=1)) == []
    assert len(fake.messages(ALERTS)) == 1


def test_a_run_that_dies_after_its_commit_still_posts_once_its_claim_expires(
        committing_factory, config, client, fake, monkeypatch):
    with transaction(committing_factory) as db:
        rollbacks(db, count=21)
    monkeypatch.setattr(outbox, "send_claimed", lambda *args, **kwargs: 0)  # dies here
    assert len(run_alerts(committing_factory, client, config, now=NOW)) == 1
    monkeypatch.undo()

    assert outbox.deliver(committing_factory, client, now=NOW + timedelta(minutes=1)) == 0  # its claim
    later = NOW + config.claim_ttl + timedelta(seconds=1)
    assert outbox.deliver(committing_factory, client, now=later) == 1
    assert run_alerts(committing_factory, client, config, now=later) == []
    assert len(fake.messages(ALERTS)) == 1


def test_no_sqlite_write_lock_is_held_while_an_alert_is_posted(sqlite_url, fake):
    # On SQLite the evaluator's transaction held the database's one write lock while
    # Slack took its time (timeouts and Retry-After add up to a minute): intake and
    # feedback failed with "nothing was saved". Now the post comes after the commit.
    config = load_settings(database_url=sqlite_url, slack_api_url=fake.base_url,
                           slack_bot_token=fake.token, alerts_channel=ALERTS)
    factory = make_session_factory(make_engine(sqlite_url))
    with transaction(factory) as db:
        cap_events(db, count=1)
    client = make_web_client(config)
    posting = threading.Event()
    post = client.chat_postMessage

    def slow_post(**kwargs):
        posting.set()
        return post(**kwargs)

    client.chat_postMessage = slow_post
    fake.delay("chat.postMessage", 2.0)
    runner = threading.Thread(target=run_alerts, args=(factory, client, config), kwargs={"now": NOW})
    runner.start()
    try:
        assert posting.wait(10)
        # A writer that waits at most 0.3 s for the lock, while the post takes 2 s.
        impatient = make_session_factory(make_engine(
            sqlite_url, connect_args={"timeout": 0.3, "check_same_thread": False}))
        with transaction(impatient) as db:
            ticket = open_ticket(db, user_id="UREQ", text="my vpn drops",
                                 source=TicketSource.SLASH_COMMAND).ticket
        assert ticket.ticket_id
    finally:
        runner.join()
    assert len(fake.messages(ALERTS)) == 1


# ----- point 11: no ALERTS_CHANNEL, no evaluation -------------------------------------

def test_without_alerts_channel_nothing_is_evaluated_or_marked_sent(committing_factory, settings,
                                                                    client, fake):
    config = load_settings(database_url=settings.database_url,
                           critical_alerts_channel=CRITICAL)  # no ALERTS_CHANNEL
    with transaction(committing_factory) as db:
        cap_events(db, count=1)
        agent_calls(db, failed=6)
    runtime = SimpleNamespace(settings=config, sessions=committing_factory)

    assert alerts.off_reason(config) == alerts.ALERTS_OFF
    assert "ALERTS_CHANNEL is not set" in alerts.ALERTS_OFF
    assert periodic.evaluate_alerts(runtime, client) == 0
    with pytest.raises(ValueError, match="ALERTS_CHANNEL is not set"):
        run_alerts(committing_factory, client, config, now=NOW)

    with transaction(committing_factory) as db:
        assert db.scalars(select(AlertState)).all() == []  # nothing fired, nothing "sent"
    assert alert_rows(committing_factory) == []
    assert fake.calls("chat.postMessage") == []
    # Once it is set, the alerts that were due fire.
    runtime.settings = config.model_copy(update={"alerts_channel": ALERTS})
    with time_machine.travel(NOW + timedelta(minutes=1)):
        assert periodic.evaluate_alerts(runtime, client) == 2
    assert (len(fake.messages(ALERTS)), len(fake.messages(CRITICAL))) == (1, 1)


def test_the_limiter_rule_counts_decisions_that_found_the_store_down(session, config):
    limiter_events(session, count=3)
    limiter_events(session, count=2, at=NOW - timedelta(minutes=16))  # outside the window

    m = by_rule(measure_all(session, config, now=NOW))[AlertRule.LIMITER_DOWN]

    assert (m.breached, m.value) == (True, 3.0)
    assert m.message == ("The autonomy limiter's store (REDIS_URL) could not be reached 3 times "
                         "over the last 15 minutes: the bot hands tickets to human triage, "
                         "rollbacks are paused and the per-person ticket limit is not enforced "
                         "until it answers again")
    [notice] = evaluate(session, config, now=NOW)
    assert (notice.rule, notice.channel) == (AlertRule.LIMITER_DOWN, ALERTS)


def test_a_decision_that_finds_the_limiter_down_raises_the_alert(
        committing_factory, config, client, fake):
    # The real path: the store is unreachable, the decision fails closed and is audited,
    # and the next evaluation says so in the alerts channel.
    dead = make_storage("redis://127.0.0.1:1/0")
    with transaction(committing_factory) as db:
        ticket = make_ticket(db, description="I forgot my password")
    outcome = decide_ticket(committing_factory, ticket.ticket_id, agent=ScriptedAgent(),
                            budget=AutonomyBudget(config, dead), settings=config).outcome
    assert outcome.action.autonomous is False

    [notice] = run_alerts(committing_factory, client, config)
    assert (notice.rule, notice.kind) == (AlertRule.LIMITER_DOWN, NoticeKind.FIRING)
    [posted] = fake.messages(ALERTS)
    assert "could not be reached 1 time" in posted["text"]


# ----- SQLite, the app clock, the views -----------------------------------------------

def test_sqlite_evaluates_without_the_advisory_lock(sqlite_url, settings):
    config = load_settings(database_url=sqlite_url, alerts_channel=ALERTS)
    factory = make_session_factory(make_engine(sqlite_url))
    with transaction(factory) as db:
        cap_events(db, count=1)

    with time_machine.travel(NOW, tick=False), transaction(factory) as db:
        assert [n.kind for n in evaluate(db, config)] == [NoticeKind.FIRING]  # now = the app clock
    with transaction(factory) as db:
        assert evaluate(db, config, now=NOW + timedelta(minutes=1)) == []
        assert db.scalars(select(AlertState.rule).order_by(AlertState.rule)).all() == sorted(
            AlertRule)


def test_alert_blocks_are_pure_and_escaped():
    notice = Notice(AlertRule.ROLLBACKS, ALERTS, NoticeKind.REPEAT, "Still firing: <!channel> & more")

    blocks = alert_blocks(notice)

    assert blocks[0]["text"]["text"] == ":rotating_light: Still firing: Rollbacks"
    assert blocks[1]["text"]["text"] == "Still firing: &lt;!channel&gt; &amp; more"
    assert "rollbacks" in blocks[2]["elements"][0]["text"]
    resolved = Notice(AlertRule.AGENT_ERRORS, None, NoticeKind.RESOLVED, "ok")
    assert alert_blocks(resolved)[0]["text"]["text"] == ":white_check_mark: Resolved: Agent API errors"


def test_words_for_windows_rates_and_notices():
    assert [span(timedelta(hours=1)), span(timedelta(minutes=5)), span(timedelta(seconds=90)),
            span(timedelta(days=2))] == ["the last hour", "the last 5 minutes",
                                        "the last 90 seconds", "the last 2 days"]
    assert [pct(0.1), pct(0.105), pct(7 / 30), pct(1.0)] == ["10%", "10.5%", "23.33%", "100%"]
    assert [plural(1, "rollback"), plural(2, "rollback")] == ["1 rollback", "2 rollbacks"]
    assert notice_text(NoticeKind.REPEAT, "x", since=NOW) == "Still firing since 2026-11-25 09:00 UTC: x"
    assert (notice_text(NoticeKind.FIRING, "x"), notice_text(NoticeKind.RESOLVED, "x")) == (
        "Alert: x", "Resolved: x")


def test_backups_that_stop_are_as_bad_as_backups_that_fail(session, config):
    backups(session, event_type=audit.BACKUP_VERIFIED, at=NOW - timedelta(hours=49))
    [notice] = evaluate(session, config, now=NOW)
    assert (notice.rule, notice.kind) == (AlertRule.BACKUP_FAILED, NoticeKind.FIRING)
    assert "No backup verified since 2026-11-23 08:00 UTC" in notice.text
    backups(session, event_type=audit.BACKUP_FAILED, at=NOW + timedelta(minutes=1))
    failed = by_rule(measure_all(session, config, now=NOW + timedelta(minutes=2)))[AlertRule.BACKUP_FAILED]
    assert failed.breached and "failed: pg_restore failed: unexpected end of file" in failed.message
    unscheduled = config.model_copy(update={"backup_dir": None})
    assert not by_rule(measure_all(session, unscheduled, now=NOW))[AlertRule.BACKUP_FAILED].breached
