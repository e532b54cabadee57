"""Alert rules: measure in SQL, decide against the stored state, owe the posts.

Each rule is one aggregate over a window ending at `now` (no rows loaded), or, for held
Slack messages, over the outbox as it stands. Rates and means need `alert_min_sample`
observations, so one "No" out of one is no alert; counts need none (the count is the
sample). `alert_state` keeps one row per rule, so a restart neither re-fires an alert
that is out nor forgets to say it cleared.

A notice is an outbox row (purpose `alert`) written in the transaction that changes
its rule's state, so the two exist together or not at all; the outbox posts it after
the commit (backoff, reconcile by metadata, held while Slack refuses the token). No
Slack call happens inside the evaluator's transaction, which on SQLite held the write
lock through Slack's retries, and a crash between a post and its commit no longer
posts it twice.

Without ALERTS_CHANNEL nothing is evaluated: a notice must have somewhere to go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import ColumnElement, case, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.core import clock
from bot.core.settings import Settings
from bot.delivery import outbox
from bot.domain.audit import (
    AUTONOMY_CAP_REACHED,
    AUTONOMY_LIMITER_DOWN,
    BACKUP_FAILED,
    BACKUP_VERIFIED,
    TICKET_LIMITER_DOWN,
)
from bot.views.alerts import NoticeKind, alert_blocks, notice_text, pct, plural, span
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    AgentCall,
    AlertRule,
    AlertState,
    AuditEvent,
    OutboxPurpose,
    OutboxStatus,
    SlackOutbox,
    TicketResolution,
    as_utc,
    transaction,
)

logger = logging.getLogger(__name__)

ALERTS_LOCK_KEY = 7_268_710_361_001
"""pg_try_advisory_xact_lock key: one evaluator at a time across beats and workers."""

ALERTS_OFF = ("alert evaluation is off: ALERTS_CHANNEL is not set. Set it to the channel "
              "alerts go to and invite the bot there; the bot serves without it")
"""The one line a process says at startup when it will not evaluate alerts."""

# Rules whose notices go to the critical channel when there is one.
_CRITICAL = frozenset({AlertRule.AGENT_ERRORS, AlertRule.POSTS_HELD})


@dataclass(frozen=True)
class Measurement:
    """One rule over its window: the rate, mean or count (None: nothing to measure),
    how many observations it rests on, whether the rule should fire, and what
    happened in a helpdesk lead's words."""

    rule: AlertRule
    value: float | None
    sample: int
    breached: bool
    message: str


@dataclass(frozen=True)
class Notice:
    """A message owed to an alerts channel; `text` is also the notification text."""

    rule: AlertRule
    channel: str
    kind: NoticeKind
    text: str


def _in_window(column: Any, now: datetime, window: timedelta) -> ColumnElement[bool]:
    # Bounded above too: a run for a past `now` (a replay, a test) ignores later rows.
    return column.between(now - window, now)


def _judged(rule: AlertRule, value: float, sample: int, breached: bool, message: str,
            settings: Settings, unit: str) -> Measurement:
    """The measurement, not breached while the sample is under `alert_min_sample`."""
    enough = sample >= settings.alert_min_sample
    if not enough:
        message += f" (not judged below {settings.alert_min_sample} {unit})"
    return Measurement(rule, value, sample, enough and breached, message)


def _failure_rate(session: Session, settings: Settings, now: datetime) -> Measurement:
    said_no = TicketResolution.resolution_confirmed.is_(False)
    answered, failed = session.execute(
        select(func.count(), func.count(case((said_no, 1))))
        .where(TicketResolution.resolution_confirmed.is_not(None),
               _in_window(TicketResolution.response_received_at, now,
                          settings.alert_failure_window))
    ).one()
    where, limit = span(settings.alert_failure_window), pct(settings.alert_failure_rate)
    if not answered:
        return Measurement(AlertRule.FAILURE_RATE, None, 0, False,
                           f"No answered resolutions over {where}; threshold {limit}")
    # Counts divide exactly-rounded, so 1 of 10 equals a 0.10 setting and does not fire.
    rate = failed / answered
    message = (f"Failure rate {pct(rate)} over {where} ({failed} of "
               f"{plural(answered, 'answered resolution')} said No); threshold {limit}")
    return _judged(AlertRule.FAILURE_RATE, rate, answered, rate > settings.alert_failure_rate, message,
                   settings, "answers")


def _low_confidence(session: Session, settings: Settings, now: datetime) -> Measurement:
    # count(confidence_score) skips rows without one: the sample is what the mean used.
    score = ActionHistory.confidence_score
    mean, sample = session.execute(
        select(func.avg(score), func.count(score))
        .where(ActionHistory.autonomous.is_(True), ActionHistory.action_type.in_(AGENT_ACTIONS),
               _in_window(ActionHistory.executed_at, now, settings.alert_confidence_window))
    ).one()
    where, limit = span(settings.alert_confidence_window), pct(settings.alert_min_confidence)
    if not sample:
        return Measurement(AlertRule.LOW_CONFIDENCE, None, 0, False,
                           f"No autonomous actions over {where}; threshold {limit}")
    # Float sums leave noise (0.4999999 for 0.5s) that must not decide the threshold.
    mean = round(float(mean), 6)
    message = (f"Mean confidence {pct(mean)} over {where} across "
               f"{plural(sample, 'autonomous action')}; threshold {limit}")
    return _judged(AlertRule.LOW_CONFIDENCE, mean, sample, mean < settings.alert_min_confidence, message,
                   settings, "actions")


def _count(session: Session, model: Any, *conditions: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


def _over(rule: AlertRule, count: int, limit: int, what: str, window: timedelta) -> Measurement:
    message = f"{plural(count, what)} over {span(window)}; threshold {limit}"
    return Measurement(rule, float(count), count, count > limit, message)


def _agent_errors(session: Session, settings: Settings, now: datetime) -> Measurement:
    window = settings.alert_agent_errors_window
    count = _count(session, AgentCall, AgentCall.ok.is_(False),
                   _in_window(AgentCall.called_at, now, window))
    return _over(AlertRule.AGENT_ERRORS, count, settings.alert_agent_errors, "agent API error", window)


def _rollbacks(session: Session, settings: Settings, now: datetime) -> Measurement:
    window = settings.alert_rollbacks_window
    count = _count(session, ActionHistory, ActionHistory.rolled_back.is_(True),
                   _in_window(ActionHistory.rolled_back_at, now, window))
    return _over(AlertRule.ROLLBACKS, count, settings.alert_rollbacks, "rollback", window)


def _autonomy_cap(session: Session, settings: Settings, now: datetime) -> Measurement:
    window = settings.alert_cap_window
    count = _count(session, AuditEvent, AuditEvent.event_type == AUTONOMY_CAP_REACHED,
                   _in_window(AuditEvent.occurred_at, now, window))
    message = (f"Autonomy cap reached {plural(count, 'time')} over {span(window)}: the bot "
               "hands tickets to human triage until the cap frees up" if count
               else f"Autonomy cap not reached over {span(window)}")
    return Measurement(AlertRule.AUTONOMY_CAP, float(count), count, count >= 1, message)


def _limiter_down(session: Session, settings: Settings, now: datetime) -> Measurement:
    # Counted from the decisions and the intakes that found the store down (each
    # audited): the alert says how often autonomy failed closed and tickets were taken
    # without the per-person limit, and clears a window after the last one.
    window = settings.alert_limiter_window
    count = _count(session, AuditEvent,
                   AuditEvent.event_type.in_([AUTONOMY_LIMITER_DOWN, TICKET_LIMITER_DOWN]),
                   _in_window(AuditEvent.occurred_at, now, window))
    message = (f"The autonomy limiter's store (REDIS_URL) could not be reached "
               f"{plural(count, 'time')} over {span(window)}: the bot hands tickets to human "
               "triage, rollbacks are paused and the per-person ticket limit is not enforced "
               "until it answers again" if count
               else f"No decision found the autonomy limiter unreachable over {span(window)}")
    return Measurement(AlertRule.LIMITER_DOWN, float(count), count, count >= 1, message)


def _posts_held(session: Session, settings: Settings, now: datetime) -> Measurement:
    # Not a window: held messages stay held until the token works, and so does this.
    held = SlackOutbox.status == OutboxStatus.HELD
    count = _count(session, SlackOutbox, held)
    if not count:
        return Measurement(AlertRule.POSTS_HELD, 0.0, 0, False, "No Slack messages held")
    why = session.scalar(select(SlackOutbox.last_error).where(held).order_by(SlackOutbox.id.desc())
                         .limit(1))
    message = (f"{plural(count, 'Slack message')} held: Slack refuses the bot's token or the "
               f"app's grants ({why}). Fix SLACK_BOT_TOKEN or reinstall the app; they are sent "
               "once Slack takes it again")
    return Measurement(AlertRule.POSTS_HELD, float(count), count, True, message)


def _backup_failed(session: Session, settings: Settings, now: datetime) -> Measurement:
    # Not a window: the newest scheduled backup decides, and a schedule that stopped
    # making backups (two intervals without a verified one) is as bad as a failing one.
    rule = AlertRule.BACKUP_FAILED
    if settings.backup_dir is None:
        return Measurement(rule, None, 0, False, "Backups are not scheduled (BACKUP_DIR)")
    newest = session.execute(
        select(AuditEvent.event_type, AuditEvent.occurred_at, AuditEvent.detail)
        .where(AuditEvent.event_type.in_([BACKUP_VERIFIED, BACKUP_FAILED]))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(1)
    ).first()
    if newest is None:
        return Measurement(rule, None, 0, False, "No scheduled backup made yet")
    at = as_utc(newest.occurred_at)
    if newest.event_type == BACKUP_FAILED:
        problems = (newest.detail or {}).get("problems") or ["no reason recorded"]
        return Measurement(rule, 1.0, 1, True, f"The backup of {at:%Y-%m-%d %H:%M} UTC failed: "
                           f"{problems[0]}")
    stale = now - at > 2 * settings.backup_interval
    message = (f"No backup verified since {at:%Y-%m-%d %H:%M} UTC (BACKUP_INTERVAL "
               f"{span(settings.backup_interval)}): is the schedule running?" if stale
               else f"No failed backup: the newest, of {at:%Y-%m-%d %H:%M} UTC, verified")
    return Measurement(rule, 1.0 if stale else 0.0, 1, stale, message)


_MEASURES: dict[AlertRule, Callable[[Session, Settings, datetime], Measurement]] = {
    AlertRule.FAILURE_RATE: _failure_rate,
    AlertRule.LOW_CONFIDENCE: _low_confidence,
    AlertRule.AGENT_ERRORS: _agent_errors,
    AlertRule.ROLLBACKS: _rollbacks,
    AlertRule.AUTONOMY_CAP: _autonomy_cap,
    AlertRule.LIMITER_DOWN: _limiter_down,
    AlertRule.POSTS_HELD: _posts_held,
    AlertRule.BACKUP_FAILED: _backup_failed,
}


def measure_all(session: Session, settings: Settings, *, now: datetime) -> list[Measurement]:
    """Measure every rule over its window ending at `now` (reads only).

    Args:
        session: any session. settings: thresholds, windows, minimum sample.
        now: the end of every window.

    Returns:
        One measurement per rule, in the order of `AlertRule`.
    """
    return [_MEASURES[rule](session, settings, now) for rule in AlertRule]


def off_reason(settings: Settings) -> str | None:
    """Why alerts are not evaluated with these settings (ALERTS_OFF), or None."""
    return None if settings.alerts_channel else ALERTS_OFF


def channel_for(rule: AlertRule, settings: Settings) -> str:
    """Where a rule posts: agent errors and held messages to the critical channel when
    there is one, the rest to the alerts channel.

    Raises:
        ValueError: ALERTS_CHANNEL is not set (ALERTS_OFF).
    """
    if not settings.alerts_channel:
        raise ValueError(ALERTS_OFF)
    critical = settings.critical_alerts_channel if rule in _CRITICAL else None
    return critical or settings.alerts_channel


def _lock_states(session: Session) -> dict[str, AlertState] | None:
    """Take the evaluator lock and the state rows; None when another evaluator runs."""
    # A transaction-scoped lock: released by the commit or rollback, even on a crash.
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ALERTS_LOCK_KEY}):
        return None
    rows = {row.rule: row for row in session.scalars(
        select(AlertState).where(AlertState.rule.in_(list(AlertRule))).with_for_update()
        .execution_options(populate_existing=True))}
    for rule in (rule for rule in AlertRule if rule not in rows):
        # No insert race: only the lock holder (or SQLite's one process) gets here.
        rows[rule] = AlertState(rule=rule, firing=False, last_message="")
        session.add(rows[rule])
    return rows


def _decide(session: Session, settings: Settings, now: datetime, *,
            claim_ttl: timedelta | None = None) -> list[tuple[Notice, SlackOutbox]]:
    """Update the state rows and owe each notice as an outbox row, in the caller's
    transaction; [] when another evaluator runs."""
    if not settings.alerts_channel:
        raise ValueError(ALERTS_OFF)  # before any write: nothing marked sent for nowhere
    states = _lock_states(session)
    if states is None:
        return []
    owed: list[tuple[Notice, SlackOutbox]] = []
    for measured in measure_all(session, settings, now=now):
        state = states[measured.rule]
        last_sent = as_utc(state.last_sent_at)
        kind: NoticeKind | None = None
        if measured.breached and not state.firing:
            kind = NoticeKind.FIRING
            state.firing, state.first_fired_at, state.last_sent_at = True, now, now
            state.resolved_at = None
        elif measured.breached and (last_sent is None
                                    or now - last_sent >= settings.alert_cooldown):
            kind = NoticeKind.REPEAT
            state.last_sent_at = now
        elif not measured.breached and state.firing:
            kind = NoticeKind.RESOLVED
            state.firing, state.resolved_at = False, now
        state.last_value, state.last_message = measured.value, measured.message
        state.updated_at = now
        if kind is not None:
            words = notice_text(kind, measured.message, since=state.first_fired_at)
            notice = Notice(measured.rule, channel_for(measured.rule, settings), kind, words)
            row = outbox.enqueue(session, purpose=OutboxPurpose.ALERT, channel=notice.channel,
                                 text=notice.text, blocks=alert_blocks(notice), now=now,
                                 claim_ttl=claim_ttl)
            owed.append((notice, row))
    session.flush()
    return owed


def evaluate(session: Session, settings: Settings, *, now: datetime | None = None) -> list[Notice]:
    """Compare every rule with its stored state; record the new state and owe each
    notice as an outbox row (the delivery job posts it).

    On PostgreSQL this first takes `pg_try_advisory_xact_lock`; if another evaluator
    holds it, [] comes back. State rows are created on first sight and read FOR UPDATE.

    Args:
        session: the caller's session; flushed here, committed by the caller.
        settings: thresholds, windows, minimum sample, cooldown and channels.
        now: the clock reading (default: the app clock).

    Returns:
        FIRING on a new breach, REPEAT once `alert_cooldown` has passed since the
        last notice of a breach that holds, RESOLVED when a firing rule clears.

    Raises:
        ValueError: ALERTS_CHANNEL is not set (ALERTS_OFF); nothing was written.
    """
    return [notice for notice, _ in _decide(session, settings, now or clock.now())]


def run_alerts(session_factory: sessionmaker[Session], client: WebClient, settings: Settings,
               *, now: datetime | None = None,
               on_notice: Callable[[Notice], None] | None = None) -> list[Notice]:
    """Evaluate the rules in one transaction, then post what it owes.

    The notices are written claimed by this run and posted right after the commit; a
    post Slack does not take now is the outbox's to retry (or hold), and one this
    process dies before sending goes out when its claim expires.

    Args:
        session_factory: makes the session whose transaction this run owns.
        client: a client from `bot.delivery.slack_client.make_web_client`.
        settings: the rules' settings and the channels.
        now: the clock reading (default: the app clock).
        on_notice: called after the commit, before the posts, for each notice owed
            (e.g. to report it to Sentry, which does not depend on Slack).

    Returns:
        The notices owed by this run, in rule order.

    Raises:
        ValueError: ALERTS_CHANNEL is not set (ALERTS_OFF); nothing was written.
    """
    now = now or clock.now()
    with transaction(session_factory) as session:
        owed = _decide(session, settings, now, claim_ttl=settings.claim_ttl)
        claims = outbox.claims_of([row for _, row in owed])
    notices = [notice for notice, _ in owed]
    # Said first where Slack has no say (the log, the hook: Sentry), so an alert about
    # Slack refusing the bot is heard while Slack still refuses it.
    for notice in notices:
        logger.warning("Alert %s %s, owed to %s: %s", notice.rule, notice.kind, notice.channel,
                       notice.text)
        try:
            if on_notice is not None:
                on_notice(notice)
        except Exception:  # a failing hook must not look like a failed alert
            logger.exception("on_notice hook failed for alert %s", notice.rule)
    outbox.send_claimed(session_factory, client, claims, ttl=settings.claim_ttl, now=now)
    return notices
