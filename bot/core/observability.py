"""Sentry for ResolveMeQ: one init per process, and nothing secret or personal leaves it.

People paste passwords and tokens into tickets, so every event, transaction and
breadcrumb goes through :func:`scrub_event`. Sentry's own scrubber matches key names
only; ours also matches Slack token shapes and the configured secrets in any string.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar
from uuid import UUID

import sentry_sdk
from sentry_sdk.integrations.argv import ArgvIntegration
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration
from sentry_sdk.transport import Transport
from sentry_sdk.utils import safe_repr
from sqlalchemy.engine import make_url

from bot.core import clock
from bot.core.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

FILTERED = "[Filtered]"
TRACES_SAMPLE_RATE = 0.1
# At most one decision report per reason in this window (per process).
REPORT_WINDOW = timedelta(minutes=1)

# Bot, user, app, refresh (xoxe.xoxp-...) and app-level tokens; a superset of
# xox[abposr]- so that a token type Slack adds later is still caught.
_SLACK_TOKEN = re.compile(r"xox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]*|xapp-[A-Za-z0-9-]*", re.I)
_SECRET_KEY = re.compile(
    r"token|secret|passw|dsn|signing|signature|authorization|cookie|api[_-]?key|credential", re.I)
# Keys whose values are people's words (or whole Slack payloads that carry them).
_TEXT_KEYS = frozenset({"description", "text", "ticket_text", "issue_type", "blocks", "reason",
                        "reopened_reason", "user_feedback_text", "agent_reasoning", "payload",
                        "body"})
# A database error's row data, should an engine not made by models.make_engine raise
# one: SQLAlchemy's "[parameters: ...]" (a repr, so one line), PostgreSQL's "DETAIL:"
# (the failing row, the duplicate key) and "LINE n:" (the statement with its values).
_ROW_DATA = re.compile(r"(\[parameters: |\bDETAIL: +|^LINE \d+: )[^\n]*", re.M)
# Values that cannot hold text; kept as they are so breadcrumb timestamps stay datetimes.
_OPAQUE = (bool, int, float, Decimal, datetime, date, time, timedelta, UUID, type(None))
_MAX_DEPTH = 32
# Shorter "secrets" would turn common words into [Filtered] all over every event.
_MIN_SECRET_LENGTH = 8

# The configured secret values, replaced whole (never mutated) so that a scrub in
# another thread never sees the set change under it.
_secrets: frozenset[str] = frozenset()
_init_lock = threading.Lock()


def init_sentry(settings: Settings, *, component: str, transport: Transport | None = None) -> bool:
    """Start Sentry for this process if SENTRY_DSN is set.

    Args:
        settings: the loaded settings (DSN, environment, release, Slack secrets).
        component: which process this is (serve, socket, worker, beat, cli); a tag.
        transport: where envelopes go instead of the network (tests).

    Returns:
        True when Sentry is on (now or from an earlier call), False without a DSN.
    """
    dsn = settings.sentry_dsn.get_secret_value().strip() if settings.sentry_dsn else ""
    if not dsn:
        return False
    with _init_lock:
        _remember_secrets(settings)
        if _active():
            # The CLI and the app factory may both call us; a second init would
            # replace the client and drop anything still queued on the first.
            return True
        options: dict[str, Any] = {"transport": transport} if transport is not None else {}
        with warnings.catch_warnings():
            # Newer SDKs deprecate send_default_pii for data_collection, but setting
            # data_collection switches Sentry's own key scrubber off; we want it on.
            warnings.filterwarnings("ignore", "The send_default_pii option", DeprecationWarning)
            sentry_sdk.init(
                dsn=dsn,
                environment=settings.environment,
                release=settings.app_version,
                integrations=[
                    LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
                    CeleryIntegration(monitor_beat_tasks=False),
                    SqlalchemyIntegration(),
                ],
                # Its sys.argv is the ticket itself for `resolvemeq ask TEXT`.
                disabled_integrations=[ArgvIntegration],
                traces_sample_rate=TRACES_SAMPLE_RATE,
                send_default_pii=False,
                max_request_body_size="never",  # Slack bodies are tickets in people's words
                # Off: a frame's locals hold what people typed under any name at all
                # (SQLAlchemy's `parameters`, a row, Bolt's request), which no scrubber
                # that goes by key names can tell from an id. Traces keep function, line
                # and source; exception messages keep no row data (models/session.py).
                include_local_variables=False,
                before_send=scrub_event,
                before_send_transaction=scrub_event,
                before_breadcrumb=_scrub_breadcrumb,
                **options,
            )
        sentry_sdk.get_global_scope().set_tag("component", component)
        return True


def scrub_event(event: Any, hint: Any) -> Any:
    """Remove secrets and people's words from a Sentry event (before_send hook).

    Args:
        event: the event or transaction, already serialized by Sentry.
        hint: Sentry's hint (unused).

    Returns:
        A scrubbed copy; on any failure a minimal event that carries nothing from
        the original but its id, since sending the raw one is the one wrong answer.
    """
    try:
        cleaned = _scrub(event, 0, set())
        if not isinstance(cleaned, dict):
            return _minimal_event(event)
        # A span's description is the SDK's SQL or URL, not ticket text: keep it
        # (token-scrubbed), or the performance data is useless.
        for span, raw in zip(cleaned.get("spans") or [], event.get("spans") or [], strict=False):
            if isinstance(span, dict) and isinstance(raw, dict) and isinstance(
                    raw.get("description"), str):
                span["description"] = _scrub_text(raw["description"])
        return cleaned
    except Exception as error:  # a scrubber that raises would let Sentry send the raw event
        log.warning("Sentry event scrubbing failed (%s); sent a placeholder", type(error).__name__)
        return _minimal_event(event)


def track_action(action_type: str, *, autonomous: bool, success: bool,
                 confidence: float | None, triage: str | None = None,
                 deliberate: bool = False, ticket_id: int | None = None) -> None:
    """Report one decision to Sentry when something went wrong with acting alone.

    A message is sent when an autonomous action failed, or when the ticket went to
    people against the agent's advice (`triage`: the caps, the limiter, the agent
    down...), at most one a minute per reason in this process: a full cap sends one
    message a minute, not one per ticket. Its tags (action type, success, autonomy,
    confidence, triage reason) are set in a scope of the message's own: nothing is left
    on the caller's scope, so no later event on a pooled thread carries this decision.

    Args:
        action_type: one of `models.AGENT_ACTIONS`.
        autonomous: whether the bot acted alone.
        success: whether it did what the agent advised (False when triaged or failed).
        confidence: the agent's confidence, 0..1, if there was one.
        triage: why the ticket went to people instead (a short, stable category), if it did.
        deliberate: the triage was people's choice (autonomy paused, shadow mode):
            nothing to report.
        ticket_id: the ticket decided on (context, not a tag: too many values).
    """
    try:
        if not _active() or deliberate:
            return
        reason = triage or (f"{action_type}_failed" if autonomous and not success else None)
        if reason is None or not _reports.allow(reason):
            return
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("action_type", action_type)
            scope.set_tag("success", "true" if success else "false")
            scope.set_tag("autonomous", "true" if autonomous else "false")
            # A tag must stay low-cardinality to be searchable: one decimal; exact in the context.
            scope.set_tag("confidence", "none" if confidence is None else f"{confidence:.1f}")
            scope.set_tag("triage", triage or "none")
            scope.set_context("decision", {
                "ticket_id": ticket_id, "action_type": action_type, "autonomous": autonomous,
                "success": success, "confidence": confidence, "triage": triage})
            scope.fingerprint = ["decision", reason]
            if triage:
                message = f"A ticket went to people against the agent's advice: {triage}"
            else:
                message = f"An autonomous {action_type} failed"
            sentry_sdk.capture_message(message, level="warning")
    except Exception:  # telemetry must never break the action it describes
        log.debug("could not report the decision to Sentry", exc_info=True)


def isolated(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run `fn` in a Sentry scope of its own, so nothing it sets (tags, breadcrumbs,
    context) stays on a pooled thread for the next piece of work."""
    with sentry_sdk.isolation_scope():
        return fn(*args, **kwargs)


class _OncePerWindow:
    """An in-process limiter: `allow(key)` is true at most once per window per key.

    Per process, so N processes may each send one a minute; enough to keep a full cap
    from sending a message per ticket, and no store to be down when we most need it.
    """

    def __init__(self, window: timedelta) -> None:
        self._window = window
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = clock.now()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._window:
                return False
            self._last[key] = now
            return True


_reports = _OncePerWindow(REPORT_WINDOW)


def capture_alert(rule: str, message: str, *, level: str, value: float | None) -> None:
    """Send one fired alert to Sentry as a message.

    Args:
        rule: the alert rule's name; a tag, and the grouping key.
        message: what the alert says (numbers, never ticket text).
        level: "warning" or "error" ("critical" and anything else count as error).
        value: the measured value that crossed the threshold.
    """
    try:
        if not _active():
            return
        sentry_level: Literal["warning", "info", "error"] = (
            "warning" if level.lower() == "warning" else "info" if level.lower() == "info" else "error")
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("alert_rule", rule)
            scope.set_context("alert", {"rule": rule, "level": level, "value": value})
            # One Sentry issue per rule; the message carries numbers that change.
            scope.fingerprint = ["alert", rule]
            sentry_sdk.capture_message(message, level=sentry_level)
    except Exception:
        log.debug("could not send the alert to Sentry", exc_info=True)


def _active() -> bool:
    # A closed client stays installed and still says is_active(); its transport is gone.
    client = sentry_sdk.get_client()
    return client.is_active() and getattr(client, "transport", None) is not None


def _remember_secrets(settings: Settings) -> None:
    global _secrets
    found = set(_secrets)
    values = [secret.get_secret_value() for secret in (
        settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token,
        settings.llm_api_key) if secret is not None]
    # A driver's connection error may quote its URL; the password must not go with it.
    values += [_password(url) for url in (settings.database_url, settings.redis_url) if url]
    found.update(value for value in values if len(value) >= _MIN_SECRET_LENGTH)
    _secrets = frozenset(found)


def _password(url: str) -> str:
    try:
        return make_url(url).password or ""
    except Exception:  # a Redis URL SQLAlchemy cannot parse: nothing to remember
        return ""


def _scrub_breadcrumb(crumb: Any, hint: Any) -> Any:
    try:
        return _scrub(crumb, 0, set())
    except Exception:
        return None  # drop the breadcrumb rather than keep it raw


def _scrub_text(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, FILTERED)
    text = _ROW_DATA.sub(_row_data_filtered, text)
    return _SLACK_TOKEN.sub(FILTERED, text)


def _row_data_filtered(match: re.Match) -> str:
    return match.group(1) + FILTERED + ("]" if match.group(1).startswith("[") else "")


def _scrub(value: Any, depth: int, path: set[int]) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, _OPAQUE):
        return value
    if isinstance(value, (bytes, bytearray)):
        return _scrub_text(bytes(value).decode("utf-8", "replace"))
    if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _scrub_text(safe_repr(value))
    if depth >= _MAX_DEPTH or id(value) in path:
        return FILTERED  # too deep to walk, or a cycle: unseen means unsafe
    path.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {k if isinstance(k, _OPAQUE) else _scrub(k, _MAX_DEPTH, path):
                    _scrub_field(k, v, depth, path) for k, v in value.items()}
        return [_scrub(item, depth + 1, path) for item in value]
    finally:
        path.discard(id(value))


def _scrub_field(key: Any, value: Any, depth: int, path: set[int]) -> Any:
    name = key.lower() if isinstance(key, str) else ""
    # Keep "empty" visible: knowing a field was blank helps and reveals nothing.
    if value is None or (isinstance(value, str) and not value):
        return value
    if name in _TEXT_KEYS or _SECRET_KEY.search(name):
        return FILTERED
    return _scrub(value, depth + 1, path)


def _minimal_event(event: Any) -> dict[str, Any]:
    safe = {"level": "error", "message": "An event was withheld: it could not be scrubbed.",
            "tags": {"scrub_failed": "true"}}
    event_id = dict.get(event, "event_id") if isinstance(event, dict) else None
    if isinstance(event_id, str) and re.fullmatch(r"[0-9a-f]{32}", event_id):
        safe["event_id"] = event_id  # keeps the id people may quote from a log line
    return safe
