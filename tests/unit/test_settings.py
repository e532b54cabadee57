"""Settings: embedded defaults, one clear line for a bad value, secrets kept out of sight."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.settings import DEFAULT_DATABASE_URL, Settings, SettingsError, load_settings, parse_duration
from bot.platform import cli


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_mode():
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url is None
    assert settings.agent_url is None
    assert (settings.autonomy_threshold, settings.medium_confidence_threshold,
            settings.low_confidence_threshold) == (0.8, 0.6, 0.3)
    assert (settings.max_autonomous_actions_per_minute, settings.max_autonomous_actions_per_hour,
            settings.max_autonomous_actions_per_day) == (50, 100, 500)
    assert settings.followup_delay == timedelta(hours=24)
    assert settings.rollback_rate_limit == "10/hour"
    assert settings.ticket_rate_limit == "20/hour"
    assert settings.helpdesk_channels == [] and not settings.is_helpdesk_channel("C0123")


def test_every_variable_of_the_contract_is_read_from_the_environment(monkeypatch):
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret", "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_API_URL": "http://127.0.0.1:9999/api/", "DATABASE_URL": "postgresql://u@h/db",
        "REDIS_URL": "redis://127.0.0.1:6379/3", "ADMIN_USER_IDS": "U1, U2,,U3",
        "ALERTS_CHANNEL": "C1", "CRITICAL_ALERTS_CHANNEL": "C2", "ESCALATION_CHANNEL": "C3",
        "AGENT_URL": "http://127.0.0.1:8001/tickets/analyze/", "AUTONOMY_THRESHOLD": "0.9",
        "FOLLOWUP_DELAY": "30m", "MAX_AUTONOMOUS_ACTIONS_PER_MINUTE": "5",
        "MAX_AUTONOMOUS_ACTIONS_PER_HOUR": "6", "MAX_AUTONOMOUS_ACTIONS_PER_DAY": "7",
        "ROLLBACK_RATE_LIMIT": "3/hour", "SENTRY_DSN": "https://k@o.example/1",
        "ENVIRONMENT": "production", "APP_VERSION": "1.2.3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.slack_bot_token.get_secret_value() == "xoxb-1"
    assert str(s.slack_api_url) == "http://127.0.0.1:9999/api/"
    assert s.admin_user_ids == ["U1", "U2", "U3"]
    assert (s.alerts_channel, s.critical_alerts_channel, s.escalation_channel) == ("C1", "C2", "C3")
    assert s.autonomy_threshold == 0.9
    assert s.followup_delay == timedelta(minutes=30)
    assert (s.max_autonomous_actions_per_minute, s.max_autonomous_actions_per_hour,
            s.max_autonomous_actions_per_day) == (5, 6, 7)
    assert s.rollback_rate_limit == "3/hour"
    assert (s.environment, s.app_version) == ("production", "1.2.3")
    assert s.redis_url == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("2d", 172800), (" 5 M ", 300)],
)
def test_durations(raw, expected):
    assert parse_duration(raw) == timedelta(seconds=expected)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AUTONOMY_THRESHOLD", "1.7", "number from 0 to 1"),
        ("AUTONOMY_THRESHOLD", "high", "number from 0 to 1"),
        ("FOLLOWUP_DELAY", "soon", "90s, 30m or 24h"),
        ("FOLLOWUP_DELAY", "0", "positive duration"),
        ("FOLLOWUP_DELAY", "-5m", "90s, 30m or 24h"),
        ("DATABASE_URL", "not a url", "SQLAlchemy URL"),
        ("DATABASE_URL", "mysql://root@localhost/x", "sqlite:// or postgresql://"),
        ("REDIS_URL", "localhost:6379", "redis://"),
        ("ROLLBACK_RATE_LIMIT", "lots", "10/hour"),
        ("TICKET_RATE_LIMIT", "lots", "20/hour"),
        ("HELPDESK_CHANNELS", "C0123,#helpdesk", "channel ids"),
        ("MAX_AUTONOMOUS_ACTIONS_PER_HOUR", "0", "greater than or equal to 1"),
        ("AGENT_URL", "not-a-url", "URL"),
        ("STATS_ACK_WAIT", "5", "less than or equal to 2.5"),
        ("SERVER_WORKERS", "0", "greater than or equal to 1"),
    ],
)
def test_a_bad_value_stops_startup_with_one_line_naming_it(monkeypatch, capsys, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(name)
    assert expected in message
    assert "\n" not in message

    assert cli.main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err


def test_kb_dir_must_be_a_folder_and_kb_shipped_false_needs_it(monkeypatch, tmp_path):
    assert (load_settings().kb_dir, load_settings().kb_shipped) == (None, True)
    monkeypatch.setenv("KB_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="^KB_DIR=.* is invalid: expected a folder of Markdown articles"):
        load_settings()
    monkeypatch.setenv("KB_DIR", str(tmp_path))
    monkeypatch.setenv("KB_SHIPPED", "false")
    assert (load_settings().kb_dir, load_settings().kb_shipped) == (tmp_path, False)
    monkeypatch.delenv("KB_DIR")
    with pytest.raises(SettingsError, match="KB_SHIPPED=false needs KB_DIR"):
        load_settings()


def test_bands_out_of_order_are_refused(monkeypatch):
    monkeypatch.setenv("MEDIUM_CONFIDENCE_THRESHOLD", "0.9")
    with pytest.raises(SettingsError, match="LOW_CONFIDENCE_THRESHOLD <= MEDIUM"):
        load_settings()


def test_several_serve_workers_need_redis_to_share_the_caps(monkeypatch):
    monkeypatch.setenv("SERVER_WORKERS", "2")
    with pytest.raises(SettingsError, match="SERVER_WORKERS above 1 needs REDIS_URL"):
        load_settings()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().server_workers == 2


def test_decisions_run_on_the_workers_with_redis_unless_told_otherwise(monkeypatch):
    assert not load_settings(database_url="sqlite://").decisions_on_workers
    assert load_settings(database_url="sqlite://", redis_url="redis://r:6379/0").decisions_on_workers
    assert not load_settings(database_url="sqlite://", redis_url="redis://r:6379/0",
                             decide_on="serve").decisions_on_workers
    monkeypatch.setenv("DECIDE_ON", "workers")
    with pytest.raises(SettingsError, match="DECIDE_ON=workers needs REDIS_URL"):
        load_settings(database_url="sqlite://")
    monkeypatch.setenv("DECIDE_ON", "celery")
    with pytest.raises(SettingsError, match="DECIDE_ON='celery' is invalid: expected workers or serve"):
        load_settings(database_url="sqlite://", redis_url="redis://r:6379/0")


def test_secrets_never_appear_in_repr_or_errors(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-123-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-password@db/rmq")
    monkeypatch.setenv("REDIS_URL", "redis://:redis-password@cache:6379/0")
    monkeypatch.setenv("SENTRY_DSN", "https://publickey@o1.example/2")
    settings = load_settings()
    shown = repr(settings) + str(settings)
    for secret in ("xoxb-123-secret", "signing-secret-value", "db-password", "redis-password",
                   "publickey"):
        assert secret not in shown
    assert "db-password" not in settings.database_url_safe

    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-password@db:notaport/rmq")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "db-password" not in str(raised.value)


def test_the_llm_agent_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("LLM_MODEL", " llama3.1 ")
    monkeypatch.setenv("LLM_API_KEY", "sk-llm-key-0123456789")
    settings = load_settings()
    assert str(settings.llm_base_url) == "http://127.0.0.1:11434/v1"
    assert settings.llm_model == "llama3.1"
    assert settings.llm_api_key.get_secret_value() == "sk-llm-key-0123456789"
    assert "sk-llm-key-0123456789" not in repr(settings) + str(settings)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AGENT_URL": "http://agent.internal/analyze", "LLM_BASE_URL": "http://127.0.0.1:8000/v1",
          "LLM_MODEL": "m"}, "AGENT_URL and LLM_BASE_URL are both set: choose one agent"),
        ({"LLM_BASE_URL": "https://api.openai.com/v1"}, "LLM_BASE_URL needs LLM_MODEL"),
        ({"LLM_BASE_URL": "https://api.openai.com/v1", "LLM_MODEL": "  "}, "LLM_BASE_URL needs LLM_MODEL"),
        ({"LLM_MODEL": "gpt-4o-mini"}, "LLM_MODEL or LLM_API_KEY is set but LLM_BASE_URL is not"),
        ({"LLM_API_KEY": "sk-abc-0123456789"}, "LLM_MODEL or LLM_API_KEY is set but LLM_BASE_URL is not"),
    ],
    ids=["both-agents", "no-model", "blank-model", "model-alone", "key-alone"],
)
def test_one_agent_at_a_time_is_refused_at_startup_with_one_line(monkeypatch, capsys, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings()
    assert cli.main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err
    assert "sk-abc" not in err


def test_a_bad_llm_url_or_key_is_named_without_its_value(monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", "ollama-on-my-laptop:11434")
    monkeypatch.setenv("LLM_MODEL", "llama3.1")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("LLM_BASE_URL is invalid")
    assert "ollama-on-my-laptop" not in str(raised.value)


def test_team_channels_map_teams_to_channels_and_fall_back_to_the_escalation_channel(monkeypatch):
    monkeypatch.setenv("TEAM_CHANNELS", " Identity & Access = C0123 , Network=C0456,Security=G0789")
    monkeypatch.setenv("ESCALATION_CHANNEL", "CESCALATE")
    settings = load_settings()
    assert settings.team_channels == {"Identity & Access": "C0123", "Network": "C0456", "Security": "G0789"}
    # Case and spacing do not matter: an agent's "identity  & access" is the same team.
    assert settings.channel_for_team("identity  & ACCESS") == "C0123"
    assert settings.channel_for_team("Messaging") == "CESCALATE"
    assert settings.channel_for_team(None) == "CESCALATE"  # DEFAULT_TEAM has none here
    monkeypatch.delenv("ESCALATION_CHANNEL")
    assert load_settings().channel_for_team("Messaging") is None
    monkeypatch.setenv("DEFAULT_TEAM", "Network")
    assert load_settings().channel_for_team(None) == "C0456"


def test_team_channels_default_to_none_set():
    assert load_settings().team_channels == {}
    assert load_settings(team_channels="").channel_for_team("Network") is None


@pytest.mark.parametrize(("value", "expected"), [
    ("Network", "expected Team name=CHANNEL_ID pairs separated by commas, such as "
                "Identity & Access=C0123,Network=C0456"),
    ("=C0123", "expected Team name=CHANNEL_ID pairs"),
    ("Network=#it-network", "'#it-network' (for Network) is not a channel id"),
    ("Network=c0456", "'c0456' (for Network) is not a channel id"),
    ("Network=U0456", "'U0456' (for Network) is not a channel id"),
    ("Network=C0456,network=C0789", "the team 'network' is named twice"),
])
def test_a_bad_team_channels_value_stops_startup_with_one_line(monkeypatch, capsys, value, expected):
    monkeypatch.setenv("TEAM_CHANNELS", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"TEAM_CHANNELS={value!r} is invalid: ") and expected in message
    assert "\n" not in message
    assert cli.main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TEAM_CHANNELS" in err


# Governance: roles from user groups, two-person rollback --------------------------------

def test_roles_and_two_person_rollback_are_read_from_the_environment(monkeypatch):
    for name, value in {"ADMIN_GROUPS": "@IT-Admins, helpdesk.leads,it-admins",
                        "APPROVER_GROUPS": "change_board", "ROLLBACK_APPROVAL": " Two-Person ",
                        "APPROVALS_CHANNEL": "CAPPROVALS", "ROLLBACK_APPROVAL_TTL": "30m"}.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.admin_groups == ["it-admins", "helpdesk.leads"]
    assert s.approver_groups == ["change_board"]
    assert s.two_person_rollback is True and s.rollback_approval == "two-person"
    assert s.approval_requests_channel == "CAPPROVALS"
    assert s.rollback_approval_ttl == timedelta(minutes=30)


def test_roles_and_approval_defaults():
    s = load_settings()
    assert (s.admin_groups, s.approver_groups) == ([], [])
    assert s.rollback_approval == "none" and s.two_person_rollback is False
    assert s.rollback_approval_ttl == timedelta(hours=1)
    assert load_settings(alerts_channel="CALERTS").approval_requests_channel == "CALERTS"


@pytest.mark.parametrize(("env", "expected"), [
    ({"ROLLBACK_APPROVAL": "three-person"},
     "ROLLBACK_APPROVAL='three-person' is invalid: expected none or two-person"),
    ({"ROLLBACK_APPROVAL": "two-person"},
     "invalid settings: ROLLBACK_APPROVAL=two-person needs APPROVALS_CHANNEL (or ALERTS_CHANNEL): "
     "where rollback requests wait for approval"),
    ({"ROLLBACK_APPROVAL": "two-person", "APPROVALS_CHANNEL": " "},
     "invalid settings: ROLLBACK_APPROVAL=two-person needs APPROVALS_CHANNEL"),
    ({"ROLLBACK_APPROVAL_TTL": "0"}, "ROLLBACK_APPROVAL_TTL='0' is invalid: expected a positive duration"),
    ({"ADMIN_GROUPS": "it admins"}, "ADMIN_GROUPS='it admins' is invalid: 'it admins' is not a user group"),
    ({"APPROVER_GROUPS": "leads,<!channel>"}, "APPROVER_GROUPS='leads,<!channel>' is invalid"),
])
def test_a_bad_governance_setting_stops_startup_with_one_line(monkeypatch, capsys, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith(expected) and "\n" not in str(raised.value)
    assert cli.main(["db", "upgrade"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_two_person_rollback_falls_back_to_the_alerts_channel(monkeypatch):
    monkeypatch.setenv("ROLLBACK_APPROVAL", "two-person")
    monkeypatch.setenv("ALERTS_CHANNEL", "CALERTS")
    assert load_settings().approval_requests_channel == "CALERTS"


def test_the_governance_settings_are_read_from_the_environment(monkeypatch, tmp_path):
    assert (load_settings().audit_signing_key, load_settings().audit_channel,
            load_settings().retention_days, load_settings().backup_dir) == (None, None, None, None)
    assert (load_settings().backup_interval, load_settings().backup_keep) == (timedelta(hours=24), 7)
    env = {"AUDIT_SIGNING_KEY": "k" * 40, "AUDIT_CHANNEL": " C0AUDIT ", "RETENTION_DAYS": "90",
           "BACKUP_DIR": str(tmp_path / "not-yet"), "BACKUP_INTERVAL": "6h", "BACKUP_KEEP": "3"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.audit_signing_key.get_secret_value() == "k" * 40 and "k" * 40 not in repr(s)
    assert (s.audit_channel, s.retention_days, s.backup_dir) == ("C0AUDIT", 90, tmp_path / "not-yet")
    assert (s.backup_interval, s.backup_keep) == (timedelta(hours=6), 3)
    monkeypatch.setenv("RETENTION_DAYS", "")
    assert load_settings().retention_days is None


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("AUDIT_SIGNING_KEY", "short-key", "AUDIT_SIGNING_KEY is invalid: expected at least 32 characters"),
    ("AUDIT_CHANNEL", "#audit", "AUDIT_CHANNEL='#audit' is invalid: expected a channel id"),
    ("RETENTION_DAYS", "0", "RETENTION_DAYS='0' is invalid"),
    ("BACKUP_INTERVAL", "daily", "BACKUP_INTERVAL='daily' is invalid: expected a duration"),
    ("BACKUP_KEEP", "0", "BACKUP_KEEP='0' is invalid"),
])
def test_a_bad_governance_setting_is_named(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith(expected)
    if name == "AUDIT_SIGNING_KEY":
        assert value not in str(raised.value)


def test_backup_dir_must_not_be_a_file(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "file"))
    with pytest.raises(SettingsError, match="BACKUP_DIR=.* is invalid: expected a folder"):
        load_settings()


def test_helpdesk_channels_and_the_ticket_limit_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("HELPDESK_CHANNELS", " C0HELP, G0PRIVATE ,")
    monkeypatch.setenv("TICKET_RATE_LIMIT", "5 per 10 minutes")
    settings = load_settings()
    assert settings.helpdesk_channels == ["C0HELP", "G0PRIVATE"]
    assert settings.is_helpdesk_channel("C0HELP") and not settings.is_helpdesk_channel("C0OTHER")
    assert not settings.is_helpdesk_channel(None)
    assert settings.ticket_rate_limit == "5 per 10 minutes"


@pytest.mark.parametrize("raw", ["off", "OFF", "none", "0"])
def test_the_ticket_limit_can_be_turned_off(monkeypatch, raw):
    monkeypatch.setenv("TICKET_RATE_LIMIT", raw)
    assert load_settings().ticket_rate_limit is None


def test_a_blank_ticket_limit_is_the_default(monkeypatch):
    monkeypatch.setenv("TICKET_RATE_LIMIT", " ")
    assert load_settings().ticket_rate_limit == "20/hour"


def test_the_clarification_loop_settings(monkeypatch, capsys):
    defaults = load_settings()
    assert (defaults.clarification_rounds, defaults.clarification_timeout) == (2, timedelta(hours=24))
    monkeypatch.setenv("CLARIFICATION_ROUNDS", "0")
    monkeypatch.setenv("CLARIFICATION_TIMEOUT", "2d")
    changed = load_settings()
    assert (changed.clarification_rounds, changed.clarification_timeout) == (0, timedelta(days=2))
    monkeypatch.setenv("CLARIFICATION_TIMEOUT", "soon")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith("CLARIFICATION_TIMEOUT='soon' is invalid: expected a duration")
    monkeypatch.setenv("CLARIFICATION_TIMEOUT", "24h")
    monkeypatch.setenv("CLARIFICATION_ROUNDS", "-1")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("CLARIFICATION_ROUNDS='-1' is invalid")


def test_autonomous_actions_default_to_all_four_and_name_some_or_none(monkeypatch):
    from models import AGENT_ACTIONS

    assert load_settings().autonomous_actions == tuple(AGENT_ACTIONS)
    monkeypatch.setenv("AUTONOMOUS_ACTIONS", " escalate , AUTO_RESOLVE ")
    assert load_settings().autonomous_actions == ("AUTO_RESOLVE", "ESCALATE")
    monkeypatch.setenv("AUTONOMOUS_ACTIONS", "none")
    assert load_settings().autonomous_actions == ()


def test_an_unknown_autonomous_action_stops_startup_with_one_line(monkeypatch):
    monkeypatch.setenv("AUTONOMOUS_ACTIONS", "AUTO_RESOLVE,ROLLBACK")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == (
        "AUTONOMOUS_ACTIONS='AUTO_RESOLVE,ROLLBACK' is invalid: unknown action type 'ROLLBACK': "
        "expected some of AUTO_RESOLVE, ESCALATE, ASSIGN_TO_TEAM, REQUEST_CLARIFICATION "
        "separated by commas, or none")
