"""The `resolvemeq` command: manifest, db upgrade, ask, and clear refusals."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from bot.core.settings import Settings
from bot.platform import cli
from bot.platform.manifest import BOT_EVENTS, build_manifest
from models.session import make_engine


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)


def test_manifest_declares_the_contract(capsys):
    assert cli.main(["manifest", "--url", "https://helpdesk.example.com/"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    url = "https://helpdesk.example.com/slack/events"
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == {"/ticket", "/history", "/rollback", "/resolution-stats"}
    assert all(c["url"] == url for c in commands.values())
    assert manifest["settings"]["event_subscriptions"]["request_url"] == url
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == set(BOT_EVENTS)
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": url}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # What the app calls: posting, DMs for follow-ups, users.info for the admin check,
    # history for follow-up reconciliation.
    assert {"chat:write", "commands", "im:write", "im:history", "users:read",
            "app_mentions:read"} <= scopes
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_socket_mode_manifest_has_no_request_urls():
    manifest = build_manifest("https://unused", socket_mode=True)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in manifest["settings"]["event_subscriptions"]
    assert all("url" not in c for c in manifest["features"]["slash_commands"])


def test_db_upgrade_then_ask_on_a_new_sqlite_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    assert cli.main(["ask", "printer", "jam"]) == 2
    assert "resolvemeq db upgrade" in capsys.readouterr().err
    assert cli.main(["db", "upgrade"]) == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    assert {"tickets", "action_history", "ticket_resolution"} <= set(inspect(engine).get_table_names())
    engine.dispose()
    assert cli.main(["ask", "I", "forgot", "my", "password", "and", "can't", "log", "in"]) == 0
    out = capsys.readouterr().out
    assert "AUTO_RESOLVE" in out and "confidence" in out and "action id" in out
    assert cli.main(["ask", "   "]) == 2
    assert "Tell me what is wrong" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["serve"], ["socket"], ["worker"], ["beat"]])
def test_commands_that_need_tokens_or_redis_say_so(command, capsys):
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert "must be set" in err and err.count("\n") == 1


def test_unknown_options_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["manifest", "--bogus"])
