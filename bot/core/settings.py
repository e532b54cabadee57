"""Every setting ResolveMeQ reads, from the environment, validated once at startup.

The defaults give the embedded mode: a SQLite file, no Redis, the knowledge-base agent.
A bad value stops startup with one line that names the variable and what it expects
(:class:`SettingsError`), because a bot that half-starts with a wrong threshold acts on
people's tickets with rules nobody chose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse as parse_rate_limit
from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///resolvemeq.db"
DEFAULT_TICKET_RATE_LIMIT = "20/hour"

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
# A public (C…) or private (G…) channel id, as Slack shows it under the channel's details.
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,20}")
_TEAM_CHANNELS_FORM = (
    "Team name=CHANNEL_ID pairs separated by commas, such as Identity & Access=C0123,Network=C0456"
)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# A Slack user group's handle (what follows @ in a mention): letters, digits, `.`, `_`, `-`.
_GROUP_HANDLE = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_GROUPS_FORM = "user group handles separated by commas, such as it-admins,helpdesk-leads"
# The bot's action types (models.AGENT_ACTIONS), in their order: AUTONOMOUS_ACTIONS names some.
AGENT_ACTION_NAMES = ("AUTO_RESOLVE", "ESCALATE", "ASSIGN_TO_TEAM", "REQUEST_CLARIFICATION")


class RollbackApproval(StrEnum):
    """ROLLBACK_APPROVAL: who must agree before an action is rolled back."""

    NONE = "none"  # one admin, with the confirm step
    TWO_PERSON = "two-person"  # an admin asks; another admin or an approver approves


class DecideOn(StrEnum):
    """DECIDE_ON: where a new ticket's decision (the agent, the act) runs."""

    WORKERS = "workers"  # a Celery task on `resolvemeq worker` (needs REDIS_URL)
    SERVE = "serve"  # the serving process's own pool (SLACK_BACKGROUND_WORKERS threads)


class SettingsError(Exception):
    """A setting has a value we cannot run with; the message is one line for the operator."""


def parse_duration(value: Any) -> timedelta:
    """Parse `90`, `90s`, `30m`, `24h` or `2d` (bare numbers are seconds).

    Args:
        value: the raw value, a string, a number or a timedelta.

    Returns:
        The duration; always positive.

    Raises:
        ValueError: for anything else, with the accepted forms in the message.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("expected a duration such as 90, 90s, 30m or 24h")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError("expected a duration such as 90, 90s, 30m or 24h")
        seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError("expected a positive duration such as 90, 90s, 30m or 24h")
    return timedelta(seconds=seconds)


def parse_optional_duration(value: Any) -> timedelta | None:
    """A duration (`parse_duration`), or None for `off`, `0` or empty.

    Raises:
        ValueError: anything else, with the accepted forms in the message.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off")):
        return None
    zero = _DURATION.match(value) if isinstance(value, str) else None
    if (zero and int(zero.group(1)) == 0) or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return None  # 0, 0s, 0d: off
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError("expected a duration such as 7d, 24h or 30m, or off") from None


def team_key(team: str) -> str:
    """How team names are compared: case and spacing do not matter ("identity  &
    access" is "Identity & Access"), so TEAM_CHANNELS need not copy an agent's spelling."""
    return " ".join(team.split()).casefold()


def parse_team_channels(value: Any) -> dict[str, str]:
    """Parse TEAM_CHANNELS: `Identity & Access=C0123,Network=C0456`.

    Args:
        value: the raw value: that string, a mapping, or empty.

    Returns:
        {team name as written: channel id}, in the order given.

    Raises:
        ValueError: a pair without `=`, an empty team name, a channel id that is not
            one (C… or G…, upper-case letters and digits), or a team named twice.
    """
    if value is None or value == "":
        return {}
    pairs = value.items() if isinstance(value, dict) else (
        part.partition("=")[::2] if "=" in part else (part, None)
        for part in str(value).split(",") if part.strip()
    )
    parsed: dict[str, str] = {}
    seen: dict[str, str] = {}
    for team, channel in pairs:
        team = " ".join(str(team).split())
        if channel is None or not team:
            raise ValueError(f"expected {_TEAM_CHANNELS_FORM}")
        channel = str(channel).strip()
        if not _CHANNEL_ID.fullmatch(channel):
            raise ValueError(f"{channel!r} (for {team}) is not a channel id; expected {_TEAM_CHANNELS_FORM}")
        if team_key(team) in seen:
            raise ValueError(f"the team {team!r} is named twice")
        seen[team_key(team)] = team
        parsed[team] = channel
    return parsed


SLA_PRIORITIES = ("critical", "high", "normal")
DEFAULT_SLA_TARGETS = "critical=15m/4h,high=1h/1d,normal=4h/3d"
_SLA_FORM = "priority=response/resolution pairs such as critical=15m/4h,high=1h/1d,normal=4h/3d"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_FORM = "days, hours and a time zone such as Mon-Fri 09:00-18:00 Europe/Berlin"
_BUSINESS_HOURS = re.compile(
    r"^\s*([A-Za-z]{3})(?:\s*-\s*([A-Za-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s+(\S+)\s*$")


@dataclass(frozen=True)
class BusinessHours:
    """BUSINESS_HOURS: the weekdays (0 = Monday), the opening and closing minute of the
    day, and the time zone they are read in."""

    days: frozenset[int]
    opens: int
    closes: int
    zone: str


def parse_sla_targets(value: Any) -> dict[str, tuple[timedelta, timedelta]]:
    """Parse SLA_TARGETS: `critical=15m/4h,high=1h/1d,normal=4h/3d`.

    Priorities left out keep their default targets.

    Raises:
        ValueError: an unknown priority, a pair without `=` or `/`, a bad duration, or
            a response target longer than the resolution target.
    """
    if isinstance(value, dict):
        return value
    targets: dict[str, tuple[timedelta, timedelta]] = {}
    if DEFAULT_SLA_TARGETS != value:
        targets.update(parse_sla_targets(DEFAULT_SLA_TARGETS))
    for part in _csv(value) or _csv(DEFAULT_SLA_TARGETS):
        name, _, pair = part.partition("=")
        name = name.strip().lower()
        if name not in SLA_PRIORITIES:
            raise ValueError(f"unknown priority {name!r}; expected {_SLA_FORM}")
        response, slash, resolution = pair.partition("/")
        if not slash:
            raise ValueError(f"expected {_SLA_FORM}")
        try:
            first, last = parse_duration(response), parse_duration(resolution)
        except ValueError:
            raise ValueError(
                f"{pair.strip()!r} (for {name}) is not two durations; expected {_SLA_FORM}") from None
        if first > last:
            raise ValueError(f"{name}: the first response target is longer than the resolution target")
        targets[name] = (first, last)
    return targets


def parse_business_hours(value: Any) -> BusinessHours | None:
    """Parse BUSINESS_HOURS: `Mon-Fri 09:00-18:00 Europe/Berlin` (empty: around the clock).

    Raises:
        ValueError: another form, an unknown day or time zone, or closing before opening.
    """
    if value is None or isinstance(value, BusinessHours):
        return value
    if not str(value).strip():
        return None
    match = _BUSINESS_HOURS.match(str(value))
    if not match:
        raise ValueError(f"expected {_HOURS_FORM}")
    first, last, oh, om, ch, cm, zone = match.groups()
    try:
        start, end = _DAYS.index(first.lower()), _DAYS.index((last or first).lower())
    except ValueError:
        raise ValueError(f"unknown day; expected {_HOURS_FORM}") from None
    # Fri-Mon wraps round the week.
    days = frozenset(range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)])
    opens, closes = int(oh) * 60 + int(om), int(ch) * 60 + int(cm)
    if not (int(om) < 60 and int(cm) < 60 and 0 <= opens < closes <= 24 * 60):
        raise ValueError(f"the hours must open before they close; expected {_HOURS_FORM}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}; expected {_HOURS_FORM}") from None
    return BusinessHours(days=days, opens=opens, closes=closes, zone=zone)


def parse_group_handles(value: Any) -> list[str]:
    """Parse ADMIN_GROUPS or APPROVER_GROUPS: `it-admins,@helpdesk-leads`.

    Args:
        value: the raw value: that string, a list, or empty.

    Returns:
        The handles, lower-case, without a leading `@`, each once, in the order given.

    Raises:
        ValueError: something that is not a user group handle.
    """
    handles: list[str] = []
    for part in _csv(value):
        handle = part.removeprefix("@").lower()
        if not _GROUP_HANDLE.fullmatch(handle):
            raise ValueError(f"{part!r} is not a user group handle; expected {_GROUPS_FORM}")
        if handle not in handles:
            handles.append(handle)
    return handles


_EXPERIMENT_FORM = "two or more thresholds separated by commas, such as 0.75,0.85"


def parse_threshold_experiment(value: Any, *, low: float) -> tuple[float, ...]:
    """Parse THRESHOLD_EXPERIMENT: `0.75,0.85`, the arms in the order given (the first is
    what the others are compared with); empty: no experiment.

    Raises:
        ValueError: not numbers, a number outside (LOW_CONFIDENCE_THRESHOLD, 1], a
            threshold named twice, or fewer than two.
    """
    parts = _csv(value)
    if not parts:
        return ()
    arms: list[float] = []
    for part in parts:
        try:
            arm = float(part)
        except (TypeError, ValueError):
            raise ValueError(f"{part!r} is not a number; expected {_EXPERIMENT_FORM}") from None
        if not low < arm <= 1:
            raise ValueError(f"{part} is outside ({low:g}, 1]: each arm must be above "
                             f"LOW_CONFIDENCE_THRESHOLD and at most 1")
        if arm in arms:
            raise ValueError(f"{part} is named twice; expected {_EXPERIMENT_FORM}")
        arms.append(arm)
    if len(arms) < 2:
        raise ValueError(f"one threshold compares nothing; expected {_EXPERIMENT_FORM}")
    return tuple(arms)


def _csv(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]


class Settings(BaseSettings):
    """The whole configuration; read with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl(DEFAULT_SLACK_API_URL)
    slack_team_id: str | None = None
    # Threads for slow work after an ack (agent, Slack calls), and HTTP request threads.
    slack_background_workers: Annotated[int, Field(ge=1, le=256)] = 8
    # Work that may wait for those threads; past it a request is told the bot is busy
    # (a ticket is still stored, and the sweep decides on it).
    slack_background_queue: Annotated[int, Field(ge=0, le=100_000)] = 200
    server_threads: Annotated[int, Field(ge=1, le=512)] = 32
    # `serve` processes (gunicorn workers). Each runs its own background work, so a busy
    # one no longer holds up another's acknowledgements behind one interpreter lock.
    server_workers: Annotated[int, Field(ge=1, le=64)] = 1

    # Storage; URLs may carry passwords, so they stay out of repr().
    database_url: str = Field(DEFAULT_DATABASE_URL, repr=False)
    redis_url: str | None = Field(None, repr=False)
    # Where decisions run: unset, on the Celery workers with REDIS_URL, else in `serve`.
    decide_on: DecideOn | None = None

    # People and channels
    admin_user_ids: Annotated[list[str], NoDecode] = []
    allow_workspace_admins: bool = False
    # Slack user groups (handles) whose members are admins, or may approve rollbacks;
    # asked of Slack at click time, cached five minutes, "no" when Slack cannot say.
    admin_groups: Annotated[list[str], NoDecode] = []
    approver_groups: Annotated[list[str], NoDecode] = []
    alerts_channel: str | None = None
    critical_alerts_channel: str | None = None
    escalation_channel: str | None = None
    # Where each team works: its notices (with Take it / Resolve) go to its channel, and
    # only that channel's members (and admins) may take or resolve its tickets. A team
    # without one falls back to ESCALATION_CHANNEL.
    team_channels: Annotated[dict[str, str], NoDecode] = {}
    # Channels where people ask for help in the open: a /ticket there is answered in
    # the channel. Anywhere else a /ticket is answered to the requester alone (a DM, or
    # an ephemeral acknowledgement), and nothing about it is posted where it was typed.
    helpdesk_channels: Annotated[list[str], NoDecode] = []

    # The agent
    agent_url: AnyHttpUrl | None = None
    agent_timeout: Annotated[float, Field(gt=0, le=60)] = 5.0
    agent_retries: Annotated[int, Field(ge=0, le=5)] = 2
    agent_breaker_failures: PositiveInt = 5
    agent_breaker_reset: Annotated[timedelta, NoDecode] = timedelta(seconds=60)
    # An LLM agent: any OpenAI-compatible Chat Completions endpoint. It shares
    # AGENT_TIMEOUT, AGENT_RETRIES and the breaker settings with the HTTP agent.
    llm_base_url: AnyHttpUrl | None = Field(None, repr=False)
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    # The company's own knowledge-base articles (Markdown with front matter), added to
    # the shipped ones; KB_SHIPPED=false answers from KB_DIR alone.
    kb_dir: Path | None = None
    kb_shipped: bool = True

    # Policy: the high band is AUTONOMY_THRESHOLD, then the medium and low bands.
    autonomy_threshold: Fraction = 0.8
    medium_confidence_threshold: Fraction = 0.6
    low_confidence_threshold: Fraction = 0.3
    auto_resolve_min_success: Fraction = 0.8
    default_team: str = "Service Desk"
    # An A/B test of AUTONOMY_THRESHOLD: `0.75,0.85` gives each ticket one of these as its
    # threshold, by a stable hash of its id (bot.domain.experiments); unset: none.
    threshold_experiment: Annotated[tuple[float, ...], NoDecode] = ()

    # Caps on autonomous actions
    max_autonomous_actions_per_minute: PositiveInt = 50
    max_autonomous_actions_per_hour: PositiveInt = 100
    max_autonomous_actions_per_day: PositiveInt = 500
    # The action types the bot may take alone (the others go to human triage with the
    # bot's suggestion kept); `none` for none. /autonomy pauses all of them at once.
    autonomous_actions: Annotated[tuple[str, ...], NoDecode] = AGENT_ACTION_NAMES

    # The clarification loop: when the bot asks for detail, the requester's replies in
    # its thread are decided on again; after this many rounds of replies without a
    # confident answer, or no reply within the timeout, a person takes the ticket.
    # 0 rounds: the bot never asks, an unsure ticket goes to people at once.
    clarification_rounds: Annotated[int, Field(ge=0, le=10)] = 2
    clarification_timeout: Annotated[timedelta, NoDecode] = timedelta(hours=24)

    # Feedback and rollback
    followup_delay: Annotated[timedelta, NoDecode] = timedelta(hours=24)
    # Survey fatigue: at most one follow-up DM per person per this long; follow-ups
    # falling due meanwhile are folded into that DM (bot.delivery.followup_batches).
    # `0` or `off`: one DM per resolution.
    survey_cooldown: Annotated[timedelta | None, NoDecode] = timedelta(days=7)
    # The NPS question rides on a follow-up DM when the person was not asked within
    # this long; `off`: never asked.
    nps_interval: Annotated[timedelta | None, NoDecode] = timedelta(days=90)
    rollback_rate_limit: str = "10/hour"
    # Tickets one person may open (moving window), shared by every process through
    # REDIS_URL; `off` for no limit. A request past it is refused and nothing is stored.
    ticket_rate_limit: str | None = DEFAULT_TICKET_RATE_LIMIT
    # Two-person rollback: a request waits in APPROVALS_CHANNEL (else ALERTS_CHANNEL)
    # for another admin or an approver, until it expires.
    rollback_approval: RollbackApproval = RollbackApproval.NONE
    approvals_channel: str | None = None
    rollback_approval_ttl: Annotated[timedelta, NoDecode] = timedelta(hours=1)

    # Alert rules: thresholds, windows, the smallest sample that may alert, cooldown.
    alert_failure_rate: Fraction = 0.10
    alert_failure_window: Annotated[timedelta, NoDecode] = timedelta(hours=1)
    alert_min_confidence: Fraction = 0.5
    alert_confidence_window: Annotated[timedelta, NoDecode] = timedelta(hours=1)
    alert_agent_errors: Annotated[int, Field(ge=0)] = 5
    alert_agent_errors_window: Annotated[timedelta, NoDecode] = timedelta(minutes=5)
    alert_rollbacks: Annotated[int, Field(ge=0)] = 20
    alert_rollbacks_window: Annotated[timedelta, NoDecode] = timedelta(hours=1)
    alert_cap_window: Annotated[timedelta, NoDecode] = timedelta(minutes=15)
    alert_limiter_window: Annotated[timedelta, NoDecode] = timedelta(minutes=15)
    alert_min_sample: PositiveInt = 5
    alert_cooldown: Annotated[timedelta, NoDecode] = timedelta(hours=1)

    # Jobs: how often each periodic job runs, and how long a claim lasts.
    job_interval: Annotated[timedelta, NoDecode] = timedelta(seconds=60)
    # Delivery tasks that share a backlog of due Slack messages on the Celery workers:
    # the one beat started and the helpers it asks for when a full batch is due.
    outbox_senders: Annotated[int, Field(ge=1, le=64)] = 4
    claim_ttl: Annotated[timedelta, NoDecode] = timedelta(minutes=2)
    sweep_grace: Annotated[timedelta, NoDecode] = timedelta(seconds=60)
    # SLA: targets per priority (first response/resolution) and the hours the clocks run
    # (bot.domain.sla); unset BUSINESS_HOURS: around the clock. Critical: always 24/7.
    sla_targets: Annotated[dict[str, tuple[timedelta, timedelta]], NoDecode] = Field(
        default_factory=lambda: parse_sla_targets(DEFAULT_SLA_TARGETS))
    business_hours: Annotated[BusinessHours | None, NoDecode] = None
    # Seconds /resolution-stats waits for its figures before acknowledging without
    # them (they follow through the response URL); Slack allows 3 s in all.
    stats_ack_wait: Annotated[float, Field(ge=0, le=2.5)] = 1.5

    # Governance: the audit chain, retention, backups.
    # HMAC key for the audit chain's entries; unset, the chain is hashed but unsigned.
    audit_signing_key: SecretStr | None = None
    # Where the chain's head is posted once a day: an anchor outside the database.
    audit_channel: str | None = None
    # Free text (requests, reasoning, comments) older than this many days is redacted.
    retention_days: PositiveInt | None = None
    # The backup schedule: off without BACKUP_DIR.
    backup_dir: Path | None = None
    backup_interval: Annotated[timedelta, NoDecode] = timedelta(hours=24)
    backup_keep: PositiveInt = 7

    # Observability
    sentry_dsn: SecretStr | None = None
    environment: str = "development"
    app_version: str = "0.1.0"

    # Set by `resolvemeq sandbox` only: a file holding seconds the one clock adds to the
    # real time (its "skip ahead"). Unset everywhere else.
    sandbox_clock_file: Path | None = None

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> list[str]:
        return _csv(value)

    @field_validator("autonomous_actions", mode="before")
    @classmethod
    def _autonomous_actions(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str) and value.strip().lower() == "none":
            return ()
        names = [name.upper() for name in _csv(value)]
        if not names:
            return AGENT_ACTION_NAMES
        unknown = [name for name in names if name not in AGENT_ACTION_NAMES]
        if unknown:
            raise ValueError(f"unknown action type {unknown[0]!r}: expected some of "
                             f"{', '.join(AGENT_ACTION_NAMES)} separated by commas, or none")
        return tuple(name for name in AGENT_ACTION_NAMES if name in names)

    @field_validator("threshold_experiment", mode="before")
    @classmethod
    def _threshold_experiment(cls, value: Any, info: ValidationInfo) -> tuple[float, ...]:
        return parse_threshold_experiment(value, low=info.data.get("low_confidence_threshold", 0.3))

    @field_validator("admin_groups", "approver_groups", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> list[str]:
        return parse_group_handles(value)

    @field_validator("helpdesk_channels", mode="before")
    @classmethod
    def _helpdesk_channels(cls, value: Any) -> list[str]:
        channels = _csv(value)
        for channel in channels:
            if not _CHANNEL_ID.fullmatch(channel):
                raise ValueError(
                    f"expected channel ids separated by commas, such as C0123ABCD,C0456EFGH "
                    f"(not {channel!r})"
                )
        return channels

    @field_validator("rollback_approval", mode="before")
    @classmethod
    def _approval(cls, value: Any) -> Any:
        spelled = value.strip().lower() if isinstance(value, str) else value
        if spelled in (None, ""):
            return RollbackApproval.NONE
        if spelled not in {mode.value for mode in RollbackApproval}:
            raise ValueError("expected none or two-person")
        return spelled

    @field_validator("decide_on", mode="before")
    @classmethod
    def _decide_on(cls, value: Any) -> Any:
        spelled = value.strip().lower() if isinstance(value, str) else value
        if spelled in (None, ""):
            return None
        if spelled not in {where.value for where in DecideOn}:
            raise ValueError("expected workers or serve")
        return spelled

    @field_validator("approvals_channel", mode="before")
    @classmethod
    def _blank_channel(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("sla_targets", mode="before")
    @classmethod
    def _sla_targets(cls, value: Any) -> dict[str, tuple[timedelta, timedelta]]:
        return parse_sla_targets(value)

    @field_validator("business_hours", mode="before")
    @classmethod
    def _business_hours(cls, value: Any) -> BusinessHours | None:
        return parse_business_hours(value)

    @field_validator("team_channels", mode="before")
    @classmethod
    def _team_channels(cls, value: Any) -> dict[str, str]:
        return parse_team_channels(value)

    @field_validator(
        "followup_delay", "agent_breaker_reset", "alert_failure_window",
        "alert_confidence_window", "alert_agent_errors_window", "alert_rollbacks_window",
        "alert_cap_window", "alert_limiter_window", "alert_cooldown", "job_interval", "claim_ttl",
        "sweep_grace", "rollback_approval_ttl", "backup_interval", "clarification_timeout",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("survey_cooldown", "nps_interval", mode="before")
    @classmethod
    def _optional_duration(cls, value: Any) -> timedelta | None:
        return parse_optional_duration(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "expected a SQLAlchemy URL such as sqlite:///resolvemeq.db or "
                "postgresql+psycopg2://user:pass@host/db"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("expected a sqlite:// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not re.match(r"^rediss?://", value):
            raise ValueError("expected a URL such as redis://127.0.0.1:6379/0")
        return value

    @field_validator("kb_dir", mode="before")
    @classmethod
    def _kb_dir(cls, value: Any) -> Path | None:
        if value in (None, ""):
            return None
        path = Path(str(value)).expanduser()
        if not path.is_dir():
            raise ValueError("expected a folder of Markdown articles (*.md) that exists")
        return path

    @field_validator("audit_signing_key", mode="before")
    @classmethod
    def _signing_key(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        # An HMAC key is only as strong as it is long; a short one is guessable.
        if len(raw.encode("utf-8")) < 32:
            raise ValueError("expected at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("retention_days", mode="before")
    @classmethod
    def _retention(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("audit_channel", mode="before")
    @classmethod
    def _audit_channel(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        channel = str(value).strip()
        if not _CHANNEL_ID.fullmatch(channel):
            raise ValueError("expected a channel id such as C0123ABCD (the bot must be a member)")
        return channel

    @field_validator("backup_dir", mode="before")
    @classmethod
    def _backup_dir(cls, value: Any) -> Path | None:
        if value in (None, ""):
            return None
        path = Path(str(value)).expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError("expected a folder for the backups (it is created if missing)")
        return path

    @model_validator(mode="after")
    def _some_articles(self) -> Settings:
        if not self.kb_shipped and self.kb_dir is None:
            raise ValueError("KB_SHIPPED=false needs KB_DIR, a folder with the company's articles")
        return self

    @field_validator("rollback_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError:
            raise ValueError("expected a rate such as 10/hour or 5 per minute") from None
        return value

    @field_validator("ticket_rate_limit", mode="before")
    @classmethod
    def _ticket_rate(cls, value: Any) -> str | None:
        if value is None:
            return None
        spelled = str(value).strip() or DEFAULT_TICKET_RATE_LIMIT
        if spelled.lower() in ("off", "none", "0"):
            return None
        try:
            parse_rate_limit(spelled)
        except ValueError:
            raise ValueError("expected a rate such as 20/hour or 5 per minute, or off") from None
        return spelled

    @field_validator("llm_model", "llm_base_url", "llm_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `LLM_MODEL=` in an env file means "not set", not a model named "".
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_agent(self) -> Settings:
        if self.agent_url and self.llm_base_url:
            raise ValueError(
                "AGENT_URL and LLM_BASE_URL are both set: choose one agent and unset the other"
            )
        if self.llm_base_url and not self.llm_model:
            raise ValueError("LLM_BASE_URL needs LLM_MODEL (the model or deployment name)")
        if not self.llm_base_url and (self.llm_model or self.llm_api_key):
            raise ValueError(
                "LLM_MODEL or LLM_API_KEY is set but LLM_BASE_URL is not "
                "(e.g. https://api.openai.com/v1)"
            )
        return self

    @model_validator(mode="after")
    def _workers_share_limits(self) -> Settings:
        # Without Redis the autonomy caps and the rollback throttle live in the process
        # (and so does the job scheduler): two workers would each allow the full cap.
        if self.server_workers > 1 and not self.redis_url:
            raise ValueError("SERVER_WORKERS above 1 needs REDIS_URL (caps shared by every worker)")
        return self

    @model_validator(mode="after")
    def _workers_need_a_broker(self) -> Settings:
        if self.decide_on == DecideOn.WORKERS and not self.redis_url:
            raise ValueError("DECIDE_ON=workers needs REDIS_URL (the Celery broker the workers read)")
        return self

    @model_validator(mode="after")
    def _approvals_have_a_channel(self) -> Settings:
        if self.rollback_approval == RollbackApproval.TWO_PERSON and not self.approval_requests_channel:
            raise ValueError(
                "ROLLBACK_APPROVAL=two-person needs APPROVALS_CHANNEL (or ALERTS_CHANNEL): "
                "where rollback requests wait for approval"
            )
        return self

    @model_validator(mode="after")
    def _bands_in_order(self) -> Settings:
        if not (
            self.low_confidence_threshold
            <= self.medium_confidence_threshold
            <= self.autonomy_threshold
        ):
            raise ValueError(
                "expected LOW_CONFIDENCE_THRESHOLD <= MEDIUM_CONFIDENCE_THRESHOLD "
                "<= AUTONOMY_THRESHOLD"
            )
        return self

    @property
    def database_url_safe(self) -> str:
        """The database URL with any password masked, for logs."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def decisions_on_workers(self) -> bool:
        """Whether new tickets' decisions are Celery tasks (DECIDE_ON, by default with
        REDIS_URL) rather than work in the serving process's pool."""
        if self.decide_on is None:
            return self.redis_url is not None
        return self.decide_on == DecideOn.WORKERS

    @property
    def two_person_rollback(self) -> bool:
        """Whether a rollback waits for a second person (ROLLBACK_APPROVAL=two-person)."""
        return self.rollback_approval == RollbackApproval.TWO_PERSON

    @property
    def approval_requests_channel(self) -> str | None:
        """Where rollback requests are posted: APPROVALS_CHANNEL, else ALERTS_CHANNEL."""
        return self.approvals_channel or self.alerts_channel or None

    def channel_for_team(self, team: str | None) -> str | None:
        """The channel where `team` works: its TEAM_CHANNELS entry, else
        ESCALATION_CHANNEL; None when neither is set.

        Args:
            team: a team name as an agent or a ticket spells it; None for DEFAULT_TEAM.
        """
        wanted = team_key(team or self.default_team)
        for name, channel in self.team_channels.items():
            if team_key(name) == wanted:
                return channel
        return self.escalation_channel or None

    def is_helpdesk_channel(self, channel_id: str | None) -> bool:
        """Whether a /ticket typed in `channel_id` is answered in the open (HELPDESK_CHANNELS)."""
        return bool(channel_id) and channel_id in self.helpdesk_channels

    def is_configured_admin(self, user_id: str) -> bool:
        """Whether ADMIN_USER_IDS names this Slack user."""
        return user_id in self.admin_user_ids


_FRACTIONS = {
    "autonomy_threshold",
    "medium_confidence_threshold",
    "low_confidence_threshold",
    "auto_resolve_min_success",
}


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = first.get("msg", "invalid value")
    message = message.removeprefix("Value error, ")
    if not loc:
        return f"invalid settings: {message}"
    if Settings.model_fields.get(loc[0]) is not None and loc[0] in _FRACTIONS:
        message = "expected a number from 0 to 1, such as 0.8"
    name = loc[0].upper()
    raw = first.get("input")
    hidden = name.startswith(("SLACK_", "SENTRY_")) or any(
        word in name for word in ("URL", "KEY", "TOKEN", "SECRET"))
    shown = "" if hidden else f"={raw!r}"
    return f"{name}{shown} is invalid: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and any explicit overrides).

    Raises:
        SettingsError: one line naming the variable and the value expected.
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_one_line(error)) from None
