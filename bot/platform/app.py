"""The Bolt app factory: build an App, register the listeners, nothing at import.

`process_before_response=True`: Bolt runs a listener on the request thread and sends
its acknowledgement when the listener returns. Our listeners only store what must be
stored and hand everything slow (the agent, Slack calls) to `Background`, so the reply
to Slack never waits for a busy listener pool (Bolt's default pool of 5 answers 404
after 3 s when it is full, and the listener still runs later).

Middlewares, in order: `deps` for every listener; requests from another workspace or
organisation refused (and every request, 503, until the bot knows its workspace:
SLACK_TEAM_ID or auth.test); the request's transaction (`handlers.transaction`). Errors: `handlers.errors`.
"""

from __future__ import annotations

import logging

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.delivery.background import READ_QUEUE, READ_WORKERS, Background
from bot.delivery.channel_members import ChannelMembers
from bot.delivery.identity import BotIdentity, Workspace
from bot.delivery.slack_client import make_web_client
from bot.delivery.slack_roles import WorkspaceRoles
from bot.delivery.user_groups import UserGroups
from bot.workflows.dispatch import InProcessDecisions
from bot.workflows.home import HomeFigures
from bot.workflows.redraws import InProcessRedraws
from bot.workflows.runtime import Runtime
from handlers import register_all
from handlers.deps import SlackDeps
from handlers.transaction import open_transaction

log = logging.getLogger(__name__)


def create_app(
    runtime: Runtime, *, client: WebClient | None = None, background: Background | None = None,
    reads: Background | None = None,
) -> App:
    """Build the Slack app for these settings.

    Args:
        runtime: database, agent and limits of this process.
        client: the Web API client (default: one for SLACK_API_URL with retries).
        background: the executor for decisions and Slack posts (default:
            SLACK_BACKGROUND_WORKERS threads, SLACK_BACKGROUND_QUEUE waiting).
        reads: the executor for the App Home and /resolution-stats (default:
            READ_WORKERS threads, READ_QUEUE waiting).
    """
    settings = runtime.settings
    if settings.slack_signing_secret is None:
        raise RuntimeError("SLACK_SIGNING_SECRET is required to serve Slack requests")
    client = client or make_web_client(settings)
    deps = SlackDeps(
        runtime=runtime,
        client=client,
        background=background or Background(settings.slack_background_workers,
                                            queue_limit=settings.slack_background_queue),
        roles=WorkspaceRoles(client),
        reads=reads or Background(READ_WORKERS, queue_limit=READ_QUEUE, name="resolvemeq-reads"),
        home=HomeFigures(runtime.sessions),
        members=ChannelMembers(client),
        groups=UserGroups(client),
    )
    # Where new tickets' decisions and the work after a click run: the Celery workers
    # (a redraw the broker refuses falls back to this process's pool), or this process's.
    in_process_redraws = InProcessRedraws(runtime, client, deps.background)
    if settings.decisions_on_workers:
        from jobs.dispatch import CeleryDecisions, CeleryRedraws, publishing_app

        publisher = publishing_app(settings)
        runtime.decisions = CeleryDecisions(settings, publisher)
        runtime.redraws = CeleryRedraws(publisher, fallback=in_process_redraws)
    else:
        runtime.decisions = InProcessDecisions(runtime, client, deps.background)
        runtime.redraws = in_process_redraws
    identity = BotIdentity(client, team_id=settings.slack_team_id)
    identity.learn_now()

    # Bolt injects arguments by parameter name; this one needs none.
    def authorize() -> AuthorizeResult:
        ids = identity.ids()
        return AuthorizeResult(enterprise_id=ids.enterprise_id, team_id=ids.team_id,
                               bot_user_id=ids.user_id, bot_id=ids.bot_id, bot_token=client.token)

    app = App(
        client=client,
        authorize=authorize,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    @app.middleware
    def provide_deps(context, next):
        context["deps"] = deps
        return next()

    @app.middleware
    def only_our_workspace(context, next):
        # A request signed with our secret (an app installed in several workspaces
        # shares one) but naming another workspace or organisation is refused: our data
        # is one workspace's. Until we know ours, nothing can be checked: 503, and
        # Slack retries events.
        verdict = identity.check(team_id=context.team_id, enterprise_id=context.enterprise_id)
        if verdict is Workspace.UNKNOWN:
            log.warning("refused a request: the bot does not know its workspace yet (auth.test "
                        "has not answered; SLACK_TEAM_ID would name it)")
            return BoltResponse(status=503, body="")
        if verdict is Workspace.NOT_OURS:
            log.warning("refused a request from another workspace or organisation")
            return BoltResponse(status=403, body="")
        return next()

    # Last, so a request refused above never gets a session. Listeners take it as
    # `session`; their `ack` commits it (handlers/transaction.py says why there).
    app.middleware(open_transaction)
    register_all(app)
    return app
