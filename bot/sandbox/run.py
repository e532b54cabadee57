"""`resolvemeq sandbox`: the stand-in Slack and the page on one port, the bot beside it.

The bot is `resolvemeq serve`, unchanged, in a child process: it gets the stand-in as
SLACK_API_URL, a token and signing secret made up for this run, its own SQLite file
(migrated first with `resolvemeq db upgrade`), no REDIS_URL (jobs on its in-process
scheduler) and the workspace's people and channels as settings. Every other setting of
the environment is left out, so the sandbox is the same on every machine.

"Run jobs now" is `resolvemeq jobs run-once` with the same settings, a process of its
own as cron would run it: the bot's process is not reached into, so the sandbox tries
the very commands an operator runs. "Skip ahead" writes the offset to
SANDBOX_CLOCK_FILE, which the bot's one clock (`bot.core.clock`) adds to the time.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC
from pathlib import Path
from typing import Any

from bot.core import clock
from bot.core.settings import Settings
from bot.sandbox import people
from bot.sandbox.page import Page
from bot.sandbox.workspace import SandboxSlack

DEFAULT_DATA = Path.home() / ".resolvemeq" / "sandbox"
_READY_TIMEOUT = 90.0  # the bot's first start imports a lot on a slow machine
_JOBS_TIMEOUT = 180.0
_STOP_TIMEOUT = 3.0


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # gone already


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sandbox:
    """One sandbox: `start()`, then `url`; `stop()` ends the bot and the stand-in.

    Args:
        data: the folder for the database, the clock file and the bot's log.
        port: the page's (and stand-in's) port; 0 picks a free one.
        bot_port: the bot's port; 0 picks a free one.
    """

    def __init__(self, data: Path, *, port: int = 3000, bot_port: int = 0) -> None:
        self.data = data
        self.bot_port = bot_port or _free_port()
        self.clock_file = data / "clock"
        self.log_file = data / "bot.log"
        self.database = data / "sandbox.db"
        self._token = "xoxb-sandbox-" + secrets.token_hex(12)
        self._secret = secrets.token_hex(16)
        self.slack = SandboxSlack(events_url=f"http://127.0.0.1:{self.bot_port}/slack/events",
                                  signing_secret=self._secret, token=self._token, port=port)
        self.slack.page = Page(self.slack, self)
        self._bot: subprocess.Popen[bytes] | None = None
        self._jobs_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.slack.port}/"

    def env(self) -> dict[str, str]:
        """The bot's environment: this one without any ResolveMeQ setting, plus the sandbox's."""
        ours = {name.upper() for name in Settings.model_fields}
        env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
        env.update(people.bot_settings())
        env.update({
            "SLACK_API_URL": self.slack.base_url,
            "SLACK_BOT_TOKEN": self._token,
            "SLACK_SIGNING_SECRET": self._secret,
            "DATABASE_URL": f"sqlite:///{self.database.resolve()}",
            "SANDBOX_CLOCK_FILE": str(self.clock_file.resolve()),
            "ENVIRONMENT": "sandbox",
        })
        return env

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bot.platform.cli", *args]

    def start(self) -> Sandbox:
        """Migrate the database, start the stand-in, start the bot and wait until it answers."""
        self.data.mkdir(parents=True, exist_ok=True)
        # A new world each run: the page's conversations live in this process only, so a
        # database kept from the last run would name messages nobody can see any more.
        for name in (self.database.name, *(self.database.name + s for s in ("-wal", "-shm", "-journal")),
                     self.log_file.name):
            (self.data / name).unlink(missing_ok=True)
        clock.write_offset(self.clock_file, 0)
        clock.use_offset_file(self.clock_file)
        self.slack.start()
        upgrade = subprocess.run(self._command("db", "upgrade"), env=self.env(), capture_output=True,
                                 text=True, timeout=_JOBS_TIMEOUT)
        if upgrade.returncode != 0:
            self.stop()
            raise RuntimeError(f"`resolvemeq db upgrade` failed:\n{upgrade.stderr.strip()}")
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child writes to it until stop()
        self._bot = subprocess.Popen(
            self._command("serve", "--host", "127.0.0.1", "--port", str(self.bot_port)),
            env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: stop() ends its workers too
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        health = f"http://127.0.0.1:{self.bot_port}/healthz"
        while time.monotonic() < deadline:
            if self._bot is not None and (code := self._bot.poll()) is not None:
                self.stop()  # forgets the process: say its exit code from before
                raise RuntimeError(f"the bot stopped at start (exit {code}); see {self.log_file}")
            try:
                with urllib.request.urlopen(health, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the bot did not answer in {_READY_TIMEOUT:.0f}s; see {self.log_file}")

    def stop(self) -> None:
        """End the bot (politely, then not) and the stand-in; safe to call twice."""
        bot, self._bot = self._bot, None
        if bot is not None and bot.poll() is None:
            # gunicorn's quick shutdown; its worker can take many seconds to let go of its
            # threads, and the sandbox keeps nothing between runs, so then it is killed.
            _signal_group(bot, signal.SIGINT)
            try:
                bot.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(bot, signal.SIGKILL)
                bot.wait()
        self.slack.stop()

    def bot_running(self) -> bool:
        return self._bot is not None and self._bot.poll() is None

    # ----- the clock and the jobs (the page's Controls) -----------------------------

    def clock_state(self) -> dict[str, Any]:
        now = clock.now().astimezone(UTC)
        return {"offset_seconds": int(clock.offset().total_seconds()),
                "now": now.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the bot's clock forward, then run the jobs (what would have run meanwhile)."""
        with self._jobs_lock:
            clock.write_offset(self.clock_file, clock.offset().total_seconds() + seconds)
        return self.run_jobs()

    def run_jobs(self) -> dict[str, Any]:
        """One pass of every periodic job (`resolvemeq jobs run-once`); its report."""
        with self._jobs_lock:
            done = subprocess.run(self._command("jobs", "run-once"), env=self.env(), capture_output=True,
                                  text=True, timeout=_JOBS_TIMEOUT)
        try:
            report = json.loads(done.stdout)
        except ValueError:
            report = {"error": (done.stderr.strip().splitlines() or ["no report"])[-1]}
        return {"clock": self.clock_state(), "jobs": report}


def main(data: Path | None = None, port: int = 3000) -> int:
    """Run the sandbox until Ctrl-C (or SIGTERM); the exit status."""
    sandbox = Sandbox(data or DEFAULT_DATA, port=port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sandbox.start()
    except OSError as error:
        print(f"resolvemeq: cannot listen on 127.0.0.1:{port} ({error.strerror}); try --port",
              file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"resolvemeq: {error}", file=sys.stderr)
        return 1
    print(f"Sandbox ready: {sandbox.url}", flush=True)
    print(f"(data in {sandbox.data}, the bot's log in {sandbox.log_file}; Ctrl-C stops it)", flush=True)
    try:
        while sandbox.bot_running():
            time.sleep(0.5)
        print(f"resolvemeq: the bot stopped; see {sandbox.log_file}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        sandbox.stop()
