"""The floor: a bare Bolt app on our server stack whose listeners only `ack()`.

Same stack as `resolvemeq serve`: gunicorn gthread through `bot.server.run_gunicorn`
(one worker, SERVER_THREADS threads), the `SlackWSGI` front with its signature and
timestamp checks, a Bolt `App` with `process_before_response=True` and the same
signing-secret verification and lazy `auth.test` against SLACK_API_URL. What it lacks
is everything that is ours: the middlewares, the database, the background work.

    python -m bench.bare_bolt --host 127.0.0.1 --port 3001

Reads SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL and SERVER_THREADS like
`resolvemeq serve`.
"""

from __future__ import annotations

import argparse
import re
import sys

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.core.settings import Settings, load_settings
from bot.platform.server import SlackWSGI, run_gunicorn


def _ack_only(ack: Ack) -> None:
    ack()


def build_app(settings: Settings) -> App:
    """A Bolt app configured like ours, with ack-only listeners for /ticket and clicks."""
    client = WebClient(token=settings.slack_bot_token.get_secret_value(),
                       base_url=str(settings.slack_api_url), timeout=10)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        process_before_response=True,
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    app.command("/ticket")(_ack_only)
    app.action(re.compile(".*"))(_ack_only)
    return app


def build_wsgi(settings: Settings) -> SlackWSGI:
    return SlackWSGI(
        build_app(settings),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        health=lambda: (True, {"app": "bare"}),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bare_bolt", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings.slack_bot_token is None or settings.slack_signing_secret is None:
        print("bench.bare_bolt: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set", file=sys.stderr)
        return 2
    run_gunicorn(lambda: build_wsgi(settings), host=args.host, port=args.port,
                 threads=settings.server_threads, workers=settings.server_workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
