"""The `resolvemeq` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, NamedTuple

from bot.core.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:  # imported where used: most commands need none of these
    from pydantic import SecretStr
    from slack_bolt import App

    from bot.platform.scheduler import EmbeddedScheduler
    from bot.workflows.runtime import Runtime

log = logging.getLogger("resolvemeq")


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from bot.platform import migrations

    migrations.upgrade(settings.database_url, args.revision)
    print(f"database at {settings.database_url_safe} is at {args.revision}")
    return 0


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from bot.core.errors import ResolveMeQError
    from bot.core.observability import init_sentry
    from bot.views.text_views import outcome_json, outcome_text
    from bot.workflows.runtime import Runtime

    init_sentry(settings, component="cli")
    runtime = Runtime.from_settings(settings)
    if not inspect(runtime.engine).has_table("tickets"):
        print("resolvemeq: the database has no tables yet; run `resolvemeq db upgrade` first",
              file=sys.stderr)
        return 2
    try:
        outcome = runtime.ask(user_id=args.user, text=" ".join(args.text))
    except ResolveMeQError as error:
        print(f"resolvemeq: {error.message}", file=sys.stderr)
        return 2
    except SQLAlchemyError as error:
        # Logged with its traceback (it reaches Sentry); the message holds no row data.
        log.error("ask: the database failed (%s)", type(error).__name__, exc_info=error)
        print("resolvemeq: the database failed, so the ticket may not be saved; see the log above",
              file=sys.stderr)
        return 1
    print(json.dumps(outcome_json(outcome, settings)) if args.json else outcome_text(outcome))
    return 0


def _kb_check(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.agent.articles import check_directory, load_articles, shipped_directory

    if args.directory is not None:
        folder = Path(args.directory)
    elif settings.kb_dir is not None:
        folder = settings.kb_dir
    else:
        folder = None
    articles, problems = (
        check_directory(shipped_directory(), label="") if folder is None else check_directory(folder)
    )
    for problem in problems:
        print(problem)
    if problems:
        return 1
    shipped = {a.id for a in load_articles()} if folder is not None else set()
    where = "the shipped articles" if folder is None else str(folder)
    print(f"{where}: {len(articles)} article{'' if len(articles) == 1 else 's'}, no problems")
    for article in articles:
        replaces = " (replaces the shipped one)" if article.id in shipped else ""
        print(f"  {article.id}: {article.title} [{len(article.examples)} examples]{replaces}")
    return 0


def _kb_test(settings: Settings, args: argparse.Namespace) -> int:
    from bot.agent import knowledge_base
    from bot.views.text_views import suggestions_text

    text = " ".join(args.text)
    agent = knowledge_base(settings)
    unanswered = 1.0 - sum(confidence for _, confidence in agent.rank(text))
    print(suggestions_text(text, agent.suggest(text, limit=3), agent.critical.detect(text),
                           no_article=unanswered))
    return 0


def _refuse_broken_articles(settings: Settings) -> None:
    """Stop `serve`, `socket` and `worker` before they start on a broken KB_DIR."""
    from bot.agent.articles import load_library

    load_library(settings.kb_dir, shipped=settings.kb_shipped)


def _say_what_is_off(settings: Settings) -> None:
    """One line at startup per periodic job these settings will not run (alerts without
    ALERTS_CHANNEL), from each command that runs or schedules the jobs; the command goes
    on without it."""
    from bot.workflows.periodic import startup_notes

    for note in startup_notes(settings):
        log.warning("%s", note)


def _need(settings: Settings, *names: str) -> None:
    missing = [n.upper() for n in names if getattr(settings, n) is None]
    if missing:
        raise SettingsError(f"{', '.join(missing)} must be set for this command")


def _secret(value: SecretStr | None, name: str) -> str:
    if value is None:
        raise SettingsError(f"{name} must be set for this command")
    return value.get_secret_value()


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    _need(settings, "slack_bot_token", "slack_signing_secret")
    _refuse_broken_articles(settings)
    _say_what_is_off(settings)
    from bot.platform.server import run_gunicorn

    log.info("serving Slack on http://%s:%d/slack/events (database %s)",
             args.host, args.port, settings.database_url_safe)
    run_gunicorn(lambda: build_wsgi(settings), host=args.host, port=args.port,
                 threads=settings.server_threads, workers=settings.server_workers)
    return 0


def build_wsgi(settings: Settings):
    """The WSGI app `serve` runs: Bolt behind our request checks, plus /healthz."""
    from bot.platform import health
    from bot.platform.server import SlackWSGI

    slack = start_slack_app(settings, component="serve")
    return SlackWSGI(
        slack.app,
        signing_secret=_secret(settings.slack_signing_secret, "SLACK_SIGNING_SECRET"),
        health=lambda: health.check(slack.runtime.engine, settings.redis_url),
    )


class SlackProcess(NamedTuple):
    """What `start_slack_app` started; `scheduler` is None with REDIS_URL (Celery runs
    the jobs)."""

    runtime: Runtime
    app: App
    scheduler: EmbeddedScheduler | None


def start_slack_app(settings: Settings, *, component: str) -> SlackProcess:
    """What `serve` and `socket` run before they listen: Sentry, the runtime, the Bolt
    app and, without REDIS_URL, the embedded scheduler (no Celery: the same jobs on a
    thread of this process).

    Args:
        settings: the loaded settings.
        component: which process this is, for Sentry ("serve", "socket").

    Returns:
        A `SlackProcess` (runtime, app, scheduler or None).
    """
    from bot.core.observability import init_sentry
    from bot.platform.app import create_app
    from bot.platform.scheduler import EmbeddedScheduler
    from bot.workflows.runtime import Runtime

    init_sentry(settings, component=component)
    runtime = Runtime.from_settings(settings)
    app = create_app(runtime)
    scheduler = None if settings.redis_url else EmbeddedScheduler(runtime, app.client).start()
    return SlackProcess(runtime, app, scheduler)


def _socket(settings: Settings, args: argparse.Namespace) -> int:
    _need(settings, "slack_bot_token", "slack_app_token", "slack_signing_secret")
    _refuse_broken_articles(settings)
    _say_what_is_off(settings)
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    slack = start_slack_app(settings, component="socket")
    SocketModeHandler(slack.app, _secret(settings.slack_app_token, "SLACK_APP_TOKEN")).start()
    return 0


def _manifest(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from bot.platform.manifest import build_manifest

    print(json.dumps(build_manifest(args.url, socket_mode=args.socket), indent=2))
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    _need(settings, "redis_url")
    _refuse_broken_articles(settings)
    _say_what_is_off(settings)
    from bot.core.observability import init_sentry
    from jobs.celery_app import app_from_environment

    # Here for the thread and solo pools; prefork children also init on worker_process_init.
    init_sentry(settings, component="worker")
    app_from_environment().worker_main(["worker", "--loglevel=INFO", *args.celery_args])
    return 0


def _beat(settings: Settings, args: argparse.Namespace) -> int:
    _need(settings, "redis_url")
    _say_what_is_off(settings)
    import tempfile
    from pathlib import Path

    from bot.core.observability import init_sentry
    from jobs.celery_app import app_from_environment

    init_sentry(settings, component="beat")
    schedule = Path(tempfile.gettempdir()) / "resolvemeq-beat-schedule"
    app_from_environment().start(["beat", "--loglevel=INFO", f"--schedule={schedule}", *args.celery_args])
    return 0


def _jobs_run_once(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from bot.core.observability import init_sentry
    from bot.delivery.slack_client import make_web_client
    from bot.workflows import periodic
    from bot.workflows.runtime import Runtime

    _say_what_is_off(settings)
    # Run from cron, this is where alerts fire: they must reach Sentry too.
    init_sentry(settings, component="jobs")
    results = periodic.run_once(Runtime.from_settings(settings), make_web_client(settings))
    print(json.dumps(results, indent=2))
    return 1 if any(isinstance(v, str) for v in results.values()) else 0


def _sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.sandbox import run

    # The sandbox ignores this environment's settings: it wires the bot itself.
    return run.main(Path(args.data) if args.data else None, port=args.port)


def _chain_engine(settings: Settings):
    """The database's engine, or None (said on stderr) when it has no audit chain yet."""
    from sqlalchemy import inspect

    from models import make_engine

    engine = make_engine(settings.database_url)
    if not inspect(engine).has_table("audit_chain"):
        print("resolvemeq: the database has no audit chain yet; run `resolvemeq db upgrade` first",
              file=sys.stderr)
        engine.dispose()
        return None
    return engine


def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from bot.domain import audit_chain, audit_verify
    from bot.views.audit import verify_text

    anchors = None
    if args.anchors:
        _need(settings, "audit_channel", "slack_bot_token")
        from slack_sdk.errors import SlackApiError

        from bot.delivery.anchors import read_anchors
        from bot.delivery.slack_client import make_web_client

        try:
            anchors = read_anchors(make_web_client(settings), settings.audit_channel or "")
        except SlackApiError as error:
            print(f"resolvemeq: could not read AUDIT_CHANNEL's history: {error.response.get('error')}"
                  " (the bot must be in the channel, with channels:history or groups:history)",
                  file=sys.stderr)
            return 2
    engine = _chain_engine(settings)
    if engine is None:
        return 2
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    try:
        with audit_verify.snapshot_session(engine) as session:
            report = audit_verify.verify(session, anchors=anchors, retention=retention,
                                         key=audit_chain.signing_key(settings.audit_signing_key))
    finally:
        engine.dispose()
    print(verify_text(report, anchors_asked=args.anchors))
    return 0 if report.ok else 1


def _audit_export(settings: Settings, args: argparse.Namespace) -> int:
    from bot.core import clock
    from bot.core.settings import parse_duration
    from bot.domain import audit_export, audit_verify

    try:
        since = clock.now() - parse_duration(args.since) if args.since else None
    except ValueError as error:
        print(f"resolvemeq: --since {args.since!r}: {error}", file=sys.stderr)
        return 2
    engine = _chain_engine(settings)
    if engine is None:
        return 2
    write = audit_export.to_csv if args.format == "csv" else audit_export.to_jsonl
    try:
        with audit_verify.snapshot_session(engine) as session:
            count = write(audit_export.records(session, since=since), sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): what it read is what it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        engine.dispose()
    print(f"resolvemeq: exported {count} audit records", file=sys.stderr)
    return 0


def _backup_create(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.workflows import backups

    try:
        manifest = backups.create(settings.database_url, Path(args.file))
    except backups.BackupError as error:
        print(f"resolvemeq: backup failed: {error}", file=sys.stderr)
        return 1
    rows = sum(manifest.counts.values())
    head = manifest.chain_head
    print(f"backup written to {args.file} ({manifest.format}), manifest "
          f"{backups.manifest_path(Path(args.file))}: {rows:,} rows in {len(manifest.counts)} "
          f"tables, schema {manifest.revision}, audit chain head "
          f"{'#' + str(head['seq']) if head else '(empty)'}")
    return 0


def _backup_verify(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.domain.audit_chain import signing_key
    from bot.workflows import backups

    found = backups.verify(Path(args.file), database_url=settings.database_url,
                           key=signing_key(settings.audit_signing_key))
    if found.ok:
        rows = sum(found.counts.values())
        entries = found.chain.entries if found.chain else 0
        print(f"OK: {args.file} restores; schema at head, audit verify passes ({entries:,} "
              f"{'entry' if entries == 1 else 'entries'}), {rows:,} rows in {len(found.counts)} "
              "tables as counted when it was made")
        return 0
    print(f"FAILED: {args.file}: {len(found.problems)} problem{'s' * (len(found.problems) != 1)}")
    for problem in found.problems:
        print(f"  - {problem}")
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resolvemeq", description="ResolveMeQ for Slack: an IT-helpdesk bot."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    up = db_commands.add_parser("upgrade", help="migrate to the newest schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=_db_upgrade)

    serve = commands.add_parser("serve", help="serve Slack over HTTP (POST /slack/events)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    serve.set_defaults(handler=_serve)

    socket = commands.add_parser("socket", help="connect to Slack with Socket Mode")
    socket.set_defaults(handler=_socket)

    manifest = commands.add_parser("manifest", help="print the Slack app manifest (JSON)")
    manifest.add_argument("--url", default="https://example.com",
                          help="the public base URL Slack will call")
    manifest.add_argument("--socket", action="store_true", help="a manifest for Socket Mode")
    manifest.set_defaults(handler=_manifest)

    worker = commands.add_parser("worker", help="run a Celery worker (needs REDIS_URL)")
    worker.set_defaults(handler=_worker)

    beat = commands.add_parser("beat", help="run the Celery scheduler (one per deployment)")
    beat.set_defaults(handler=_beat)

    jobs = commands.add_parser("jobs", help="periodic jobs")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    once = jobs_commands.add_parser("run-once", help="one pass of every periodic job")
    once.set_defaults(handler=_jobs_run_once)

    ask = commands.add_parser(
        "ask", help="open a ticket from the terminal and show what the bot decided"
    )
    ask.add_argument("text", nargs="+", help="the request, as a person would type it")
    ask.add_argument("--user", default="UCLI", help="the requester's Slack user id")
    ask.add_argument("--json", action="store_true",
                     help="print the decision as one JSON object (for scripts)")
    ask.set_defaults(handler=_ask)

    kb = commands.add_parser("kb", help="the knowledge-base articles")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_commands.add_parser(
        "check", help="validate a folder of articles (default KB_DIR, else the shipped ones)")
    check.add_argument("directory", nargs="?", help="the folder to check")
    check.set_defaults(handler=_kb_check)
    test = kb_commands.add_parser(
        "test", help="the three articles most likely to answer a request, with their confidence")
    test.add_argument("text", nargs="+", help="the request, as a person would type it")
    test.set_defaults(handler=_kb_test)

    audit = commands.add_parser("audit", help="the signed audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    check_chain = audit_commands.add_parser(
        "verify", help="check the audit chain; exit 1 naming the first row changed, removed or inserted")
    check_chain.add_argument("--anchors", action="store_true",
                             help="also check the chain passes through the heads posted to AUDIT_CHANNEL")
    check_chain.set_defaults(handler=_audit_verify)
    export = audit_commands.add_parser("export", help="every audit record, for compliance")
    export.add_argument("--since", help="only records this recent: a duration such as 7d or 24h")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.set_defaults(handler=_audit_export)

    backup = commands.add_parser("backup", help="backups that are known to restore")
    backup_commands = backup.add_subparsers(dest="backup_command", required=True)
    make = backup_commands.add_parser(
        "create", help="back the database up to FILE (pg_dump custom format, or a SQLite copy)")
    make.add_argument("file", help="the backup file; FILE.manifest.json is written beside it")
    make.set_defaults(handler=_backup_create)
    check_backup = backup_commands.add_parser(
        "verify", help="restore FILE into a scratch database and check it; exit 1 on any mismatch")
    check_backup.add_argument("file", help="a file written by `backup create`")
    check_backup.set_defaults(handler=_backup_verify)
    sandbox = commands.add_parser(
        "sandbox", help="try the bot in a local web page: a stand-in Slack, no workspace needed")
    sandbox.add_argument("--port", type=int, default=3000, help="the page's port (default 3000)")
    sandbox.add_argument("--data", help="the folder for its database (default ~/.resolvemeq/sandbox)")
    sandbox.set_defaults(handler=_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `resolvemeq` command; returns the exit status."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("resolvemeq").setLevel(logging.INFO)
    parser = build_parser()
    # Options after `worker` / `beat` go to Celery as they are (e.g. --concurrency=4).
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("worker", "beat"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.celery_args = extra
    from bot.agent.articles import KnowledgeBaseError

    try:
        settings = load_settings()
        return args.handler(settings, args)
    except SettingsError as error:
        print(f"resolvemeq: {error}", file=sys.stderr)
        return 2
    except KnowledgeBaseError as error:
        # One line per problem, as `resolvemeq kb check` prints them.
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print("resolvemeq: the knowledge base has problems; fix them (see `resolvemeq kb check`)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
