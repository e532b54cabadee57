"""The `resolvemeq` command: manifest, db upgrade, ask, and clear refusals."""

from __future__ import annotations

import json
import logging

import pytest
import sentry_sdk
from sqlalchemy import inspect

from bot.core.settings import Settings, load_settings
from bot.delivery import outbox
from bot.platform import cli, migrations
from bot.platform.manifest import BOT_EVENTS, build_manifest
from bot.sandbox.standin import SlackStandIn
from models import OutboxPurpose
from models.session import make_engine, make_session_factory
from tests.support.fake_sentry import FakeSentry


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
    assert set(commands) == {"/ticket", "/history", "/rollback", "/resolution-stats", "/autonomy"}
    assert all(c["url"] == url for c in commands.values())
    assert manifest["settings"]["event_subscriptions"]["request_url"] == url
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == set(BOT_EVENTS)
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": url}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # What the app calls: posting, DMs for follow-ups, users.info for the admin check,
    # history for follow-up reconciliation, conversations.members for who is in a
    # team's channel (public and private).
    assert {"chat:write", "commands", "im:write", "im:history", "users:read",
            "app_mentions:read", "channels:read", "groups:read"} <= scopes
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    # The requester's replies to the bot's questions, in DMs, channels and private channels.
    assert {"message.im", "message.channels", "message.groups", "app_mention"} <= set(BOT_EVENTS)
    assert {"im:history", "channels:history", "groups:history"} <= scopes


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


def test_ask_json_is_one_object_for_scripts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    assert cli.main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert cli.main(["ask", "--json", "my", "VPN", "keeps", "disconnecting"]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert set(decided) == {"ticket", "action", "autonomous", "confidence", "band", "article", "team",
                            "critical", "reasoning"}
    assert (decided["action"], decided["band"], decided["article"], decided["team"]) == (
        "AUTO_RESOLVE", "high", "vpn", "Network")
    assert decided["critical"] is False and decided["confidence"] >= 0.8 and decided["reasoning"]

    assert cli.main(["ask", "--json", "my laptop was stolen from my car"]) == 0
    stolen = json.loads(capsys.readouterr().out)
    assert (stolen["action"], stolen["critical"], stolen["team"], stolen["article"]) == (
        "ESCALATE", True, "Security", None)
    assert stolen["ticket"] == decided["ticket"] + 1

    assert cli.main(["ask", "--json", "can I expense my home office chair?"]) == 0
    chair = json.loads(capsys.readouterr().out)
    assert (chair["action"], chair["band"], chair["article"]) == ("REQUEST_CLARIFICATION", "very_low", None)


ARTICLE = """\
---
id: expense_tool
title: Expense tool won't load
category: software
self_service: true
success_probability: 0.9
estimated_time: 5 minutes
examples:
  - the expense tool won't load
  - concur is stuck on the login page
  - can't submit my expense report in concur
---
1. Open Concur from the intranet link.
2. Clear the browser cache and sign in again.
3. If it still fails, reply with a screenshot.
"""


@pytest.fixture()
def broken_kb(tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "expense_tool.md").write_text(ARTICLE)
    (folder / "printer.md").write_text(
        ARTICLE.replace("id: expense_tool", "id: printer").replace("success_probability: 0.9",
                                                                    "success_probability: high"))
    (folder / "vpn.md").write_text(ARTICLE.replace("id: expense_tool", "id: vpn").replace(
        "examples:\n  - the expense tool won't load\n", "examples:\n"))
    return folder


def test_kb_check_names_each_problem_by_file_and_field(broken_kb, capsys):
    assert cli.main(["kb", "check", str(broken_kb)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{broken_kb}/printer.md: success_probability: expected a number from 0 to 1",
        f"{broken_kb}/vpn.md: examples: expected at least 3 phrasings, got 2",
    ]


def test_kb_check_of_a_good_folder_lists_its_articles(broken_kb, monkeypatch, capsys):
    (broken_kb / "printer.md").unlink()
    (broken_kb / "vpn.md").unlink()
    (broken_kb / "vpn.md").write_text(ARTICLE.replace("id: expense_tool", "id: vpn"))
    monkeypatch.setenv("KB_DIR", str(broken_kb))
    assert cli.main(["kb", "check"]) == 0  # KB_DIR when no folder is named
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{broken_kb}: 2 articles, no problems"
    assert "  vpn: Expense tool won't load [3 examples] (replaces the shipped one)" in out
    monkeypatch.delenv("KB_DIR")
    assert cli.main(["kb", "check"]) == 0  # the shipped ones
    assert capsys.readouterr().out.startswith("the shipped articles: 15 articles, no problems")


@pytest.mark.parametrize("command", [
    ["serve"], ["socket"], ["worker"], ["ask", "printer", "jam"], ["kb", "test", "printer jam"]])
def test_nothing_starts_on_a_broken_knowledge_base(broken_kb, monkeypatch, tmp_path, capsys, command):
    for name, value in {"KB_DIR": str(broken_kb), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
                        "SLACK_APP_TOKEN": "xapp-1", "REDIS_URL": "redis://127.0.0.1:6379/31",
                        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}.items():
        monkeypatch.setenv(name, value)
    if command[0] == "ask":
        assert cli.main(["db", "upgrade"]) == 0
        capsys.readouterr()
    assert cli.main(command) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        f"{broken_kb}/printer.md: success_probability: expected a number from 0 to 1",
        f"{broken_kb}/vpn.md: examples: expected at least 3 phrasings, got 2",
    ]
    assert "resolvemeq kb check" in err[2]


def test_kb_test_prints_the_top_three_articles_with_their_confidence(capsys):
    assert cli.main(["kb", "test", "my", "VPN", "keeps", "disconnecting"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Request: my VPN keeps disconnecting", "  not critical"]
    first = lines[2].split()
    assert first[0] == "1." and float(first[1]) >= 0.8 and first[2] == "vpn:"
    assert [line.split()[0] for line in lines[3:5]] == ["2.", "3."]
    assert "no article fits" in lines[5]
    assert cli.main(["kb", "test", "my laptop was stolen from my car"]) == 0
    assert "CRITICAL (lost or stolen device)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["serve"], ["socket"], ["worker"], ["beat"]])
def test_commands_that_need_tokens_or_redis_say_so(command, capsys):
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert "must be set" in err and err.count("\n") == 1


def test_unknown_options_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["manifest", "--bogus"])


def _alerts_off_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "ALERTS_CHANNEL" in r.getMessage()]


def test_jobs_run_once_without_alerts_channel_says_so_once_and_runs_the_rest(
        tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    assert cli.main(["db", "upgrade"]) == 0
    capsys.readouterr()

    with caplog.at_level(logging.WARNING):
        assert cli.main(["jobs", "run-once"]) == 0
    assert _alerts_off_lines(caplog) == [
        "alert evaluation is off: ALERTS_CHANNEL is not set. Set it to the channel alerts go "
        "to and invite the bot there; the bot serves without it"]
    assert json.loads(capsys.readouterr().out) == {"sweep_new_tickets": 0, "deliver_outbox": 0,
                                                   "expire_rollback_requests": 0,
                                                   "expire_clarifications": 0, "check_sla": 0}

    caplog.clear()
    monkeypatch.setenv("ALERTS_CHANNEL", "CALERTS")
    with caplog.at_level(logging.WARNING):
        assert cli.main(["jobs", "run-once"]) == 0
    assert _alerts_off_lines(caplog) == []
    assert json.loads(capsys.readouterr().out)["evaluate_alerts"] == 0


def test_serve_without_alerts_channel_says_so_once_and_still_serves(tmp_path, monkeypatch, caplog):
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
                        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}.items():
        monkeypatch.setenv(name, value)
    served = []
    monkeypatch.setattr("bot.platform.server.run_gunicorn", lambda *a, **k: served.append(k))

    with caplog.at_level(logging.WARNING):
        assert cli.main(["serve", "--port", "0"]) == 0

    assert len(served) == 1
    assert len(_alerts_off_lines(caplog)) == 1


# `resolvemeq socket`: what it starts before it connects ----------------------------------
# Socket Mode itself needs Slack's websocket; the test drives `start_slack_app`, which
# `socket` calls before it hands the app to the SocketModeHandler.


@pytest.fixture()
def sentry_closed_after():
    """Whatever Sentry client a test starts in this process is closed afterwards."""
    yield
    sentry_sdk.get_client().close()
    scope = sentry_sdk.get_global_scope()
    scope.set_client(None)
    scope.remove_tag("component")


def test_socket_mode_reports_to_sentry_and_runs_the_jobs_without_redis(tmp_path, sentry_closed_after):
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:  # a post that is due: the job sends it
        outbox.enqueue(session, purpose=OutboxPurpose.NOTICE, channel="CHELPDESK",
                       text="Ticket #7 needs a person")
    engine.dispose()
    with SlackStandIn() as slack, FakeSentry() as sentry:
        settings = load_settings(
            database_url=url, slack_api_url=slack.base_url, slack_bot_token=slack.token,
            slack_signing_secret="socket-signing-secret", slack_app_token="xapp-1-socket-test",
            sentry_dsn=sentry.dsn, job_interval="1")
        process = cli.start_slack_app(settings, component="socket")
        try:
            assert process.scheduler is not None
            [post] = slack.wait_for("chat.postMessage", timeout=15)
            assert post.args["text"] == "Ticket #7 needs a person"
            logging.getLogger("resolvemeq.test").error("a socket-mode failure")
            [event] = sentry.wait_for(lambda e: "a socket-mode failure" in str(e.get("logentry")))
            assert event["tags"]["component"] == "socket"
        finally:
            process.scheduler.stop()
            process.runtime.engine.dispose()


def test_socket_mode_with_redis_leaves_the_jobs_to_celery(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}",
                             slack_bot_token="xoxb-1", slack_signing_secret="s",
                             slack_app_token="xapp-1", redis_url="redis://127.0.0.1:6379/31")
    process = cli.start_slack_app(settings, component="socket")
    assert process.scheduler is None
    process.runtime.engine.dispose()
