"""Every kind of process reports to Sentry: `serve` (tests/e2e/test_faults.py),
`jobs run-once`, `ask`, `worker` and `beat` here, each a real subprocess whose
SENTRY_DSN is a fake ingest; `socket` in tests/integration/test_cli.py (Socket Mode
itself needs Slack's websocket).

Each process is given something that Sentry must hear about (an alert fired from cron,
a database that refuses a ticket, a broker that is not there) and the test waits for
that event, tagged with the process's component.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import insert, text

from bot.core import clock
from bot.core.settings import Settings
from bot.sandbox.standin import SlackStandIn
from models import AgentCall, make_engine
from tests.support.fake_sentry import FakeSentry
from tests.support.faults import leaks, secrets_of, watch
from tests.support.harness import ROOT, free_port

CRITICAL = "CCRITICAL"
PASSWORD = "Hunter2-vpn-pw"


def _env(**values: str) -> dict[str, str]:
    """This environment without any setting of ours, plus `values`."""
    kept = {k: v for k, v in os.environ.items()
            if k.lower() not in Settings.model_fields and not k.startswith(("SLACK_", "SENTRY_"))}
    return {**kept, **values}


def _run(*argv: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "bot.platform.cli", *argv], cwd=ROOT, env=env,
                          capture_output=True, timeout=timeout, text=True)
    watch(f"resolvemeq {' '.join(argv)}", lambda: done.stdout + done.stderr, secrets_of(env))
    return done


def _tags(event: dict) -> dict:
    return dict(event.get("tags") or {})


@pytest.fixture()
def sentry():
    with FakeSentry() as fake:
        yield fake


def test_jobs_run_once_from_cron_sends_the_alert_it_fires_to_sentry(sqlite_url, sentry):
    engine = make_engine(sqlite_url)
    now = clock.now()
    with engine.begin() as conn:  # six agent errors in the last minutes: over the limit of 5
        conn.execute(insert(AgentCall), [
            {"called_at": now - timedelta(minutes=1), "agent": "http", "ok": False,
             "latency_ms": 5000.0, "attempts": 3, "error": "timed out"} for _ in range(6)])
    engine.dispose()
    with SlackStandIn() as slack:
        done = _run("jobs", "run-once", env=_env(
            DATABASE_URL=sqlite_url, SLACK_API_URL=slack.base_url, SLACK_BOT_TOKEN=slack.token,
            ALERTS_CHANNEL="CALERTS", CRITICAL_ALERTS_CHANNEL=CRITICAL, SENTRY_DSN=sentry.dsn))
        assert done.returncode == 0, done.stderr
        [alert] = slack.messages(CRITICAL)
    assert "6 agent API errors" in alert["text"]
    [event] = sentry.wait_for(lambda e: _tags(e).get("alert_rule") == "agent_errors")
    assert _tags(event)["component"] == "jobs"
    assert "6 agent API errors" in event["message"]


def test_ask_reports_a_database_failure_to_sentry_without_the_text(sqlite_url, sentry):
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON tickets "
                          "BEGIN SELECT RAISE(ABORT, 'tickets are refused'); END"))
    engine.dispose()
    done = _run("ask", f"my vpn password is {PASSWORD}, it stopped working",
                env=_env(DATABASE_URL=sqlite_url, SENTRY_DSN=sentry.dsn))
    assert done.returncode == 1
    assert "the database failed" in done.stderr and "Traceback" not in done.stdout
    [event] = sentry.wait_for(lambda e: "ask: the database failed" in str(
        (e.get("logentry") or {}).get("message")))
    assert _tags(event)["component"] == "cli"
    assert [v["type"] for v in event["exception"]["values"]][-1] == "IntegrityError"
    assert PASSWORD not in sentry.text() and PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_celery_processes_report_a_broker_they_cannot_reach(command, sqlite_url, sentry, tmp_path):
    broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    # TMPDIR: beat keeps its schedule file there, and another beat may hold the default.
    # JOB_INTERVAL: beat sends its first task (and meets the broker) one interval in.
    env = _env(DATABASE_URL=sqlite_url, REDIS_URL=broker, SENTRY_DSN=sentry.dsn, TMPDIR=str(tmp_path),
               JOB_INTERVAL="1")
    extra = ["--pool=solo"] if command == "worker" else []
    process = subprocess.Popen([sys.executable, "-m", "bot.platform.cli", command, *extra],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        [event] = sentry.wait_for(lambda e: _tags(e).get("component") == command, timeout=60)
        assert event["level"] == "error"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate(timeout=15)[0].decode(errors="replace")
    assert leaks(output + sentry.text(), secrets_of(env)) == []
