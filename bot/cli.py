"""The `resolvemeq` command."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("resolvemeq")


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from bot import migrations

    migrations.upgrade(settings.database_url, args.revision)
    print(f"database at {settings.database_url_safe} is at {args.revision}")
    return 0


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import inspect

    from bot.errors import ResolveMeQError
    from bot.runtime import Runtime
    from bot.text_views import outcome_text

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
    print(outcome_text(outcome))
    return 0


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

    ask = commands.add_parser(
        "ask", help="open a ticket from the terminal and show what the bot decided"
    )
    ask.add_argument("text", nargs="+", help="the request, as a person would type it")
    ask.add_argument("--user", default="UCLI", help="the requester's Slack user id")
    ask.set_defaults(handler=_ask)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `resolvemeq` command; returns the exit status."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("resolvemeq").setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"resolvemeq: {error}", file=sys.stderr)
        return 2
    return args.handler(settings, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
