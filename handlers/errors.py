"""The one error path: what a person is told when a listener raises instead of answering.

Bolt calls `on_error` with whatever a listener (or a middleware) raised. It first ends
the request's transaction (rolled back; an audited denial kept, see
`handlers.transaction`), then answers:

- our errors (`ResolveMeQError`): the sentence the error carries;
- a database outage (any `SQLAlchemyError`: connection refused, pool timeout, a failed
  commit; the rarer errors that are not outages are equally "nothing was saved, try
  again"): that nothing was saved, in the words of what the person did;
- anything else: an error id in the log and in Sentry, and nothing the person could act on.

Where the person sees it: a slash command's answer is its acknowledgement (ephemeral);
with `process_before_response=True` nothing has been sent when the listener raises, and
the response returned here is that acknowledgement. A modal's submission is answered
with `response_action: errors` under its first input, so the modal stays open with what
was typed and says why. A click or an event is acknowledged
with an empty 200 (Slack shows an error for anything else, and retries events) and the
sentence goes to the person as an ephemeral message, off the request path: through the
click's response URL for a click on an ephemeral message or on the rollback confirm step
(the bot may not be in that channel; a refusal that settles the confirm step replaces
it), else with chat.postEphemeral (a click in App Home, which has no channel: a message
in their DM with the bot).
"""

from __future__ import annotations

import logging
import uuid

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_bolt.request.payload_utils import is_event, is_slash_command, is_view_submission, to_action
from sqlalchemy.exc import SQLAlchemyError

from bot import views
from bot.core.errors import Busy, LimiterUnavailable, ResolveMeQError
from bot.views import ActionId
from bot.workflows import announce, requester
from handlers.transaction import committed, end_transaction

log = logging.getLogger(__name__)

DB_DOWN = (
    "Sorry, I can't reach the helpdesk database right now, so nothing was saved. "
    "Please try again in a minute."
)
# What to do about an outage depends on what the person did: send the message again,
# click again. A button whose effect is not "saving" says what did not happen.
DB_DOWN_EVENT = (
    "Sorry, I can't reach the helpdesk database right now, so nothing was saved. "
    "Please send that again in a minute."
)
DB_DOWN_CLICK = "Sorry, I couldn't save that right now. Please click again in a minute."
DB_DOWN_FORM = "Sorry, I couldn't save that right now. Please submit again in a minute."
DB_DOWN_BY_ACTION = {
    ActionId.ROLLBACK_CONFIRM.value:
        "Sorry, I can't reach the helpdesk database right now; nothing was rolled back.",
    ActionId.ROLLBACK_APPROVE.value:
        "Sorry, I can't reach the helpdesk database right now; nothing was rolled back.",
    ActionId.WHY.value:
        "Sorry, I can't reach the helpdesk database right now. Please click again in a minute.",
}


def said_for(error: BaseException, body: dict) -> str | None:
    """The sentence a person is told for `error`, or None if it is unexpected.

    A database error is logged here, with its traceback (it reaches Sentry).

    Args:
        error: what a listener raised.
        body: the request's body (which surface it came from decides the outage wording).

    Returns:
        The error's own sentence, an outage sentence, or None.
    """
    if isinstance(error, ResolveMeQError):
        return error.message
    if not isinstance(error, SQLAlchemyError):
        return None
    log.error("could not handle %s: the database failed (%s); nothing was saved", _what(body),
              type(error).__name__, exc_info=error)
    if is_slash_command(body):
        return DB_DOWN
    if is_event(body):
        return DB_DOWN_EVENT
    if is_view_submission(body):
        return DB_DOWN_FORM
    return DB_DOWN_BY_ACTION.get(_action_id(body), DB_DOWN_CLICK)


def on_error(error: BaseException, body: dict, context: BoltContext) -> BoltResponse:
    """Bolt's error handler: end the transaction, then answer the person (see the module)."""
    if committed(context):
        # Raised after the ack committed: the request took effect, so neither a refusal
        # nor "nothing was saved" would be true. Only a bug gets here.
        return _unexpected(error)
    error = end_transaction(context, error)
    text = said_for(error, body)
    if text is None:
        return _unexpected(error)
    if is_slash_command(body):
        return Ack()(response_type="ephemeral", text=text, blocks=views.error_message(text))
    if is_view_submission(body) and (field := _first_input(body)) is not None:
        return Ack()(response_action="errors", errors={field: text})
    deps = context.get("deps")
    response_url = _in_place(body)
    if deps is not None and context.user_id and response_url:
        deps.background.try_submit(announce.reply, deps.client, response_url=response_url,
                                   channel=context.channel_id, user=context.user_id, text=text,
                                   replace=_settles(error, body))
    elif deps is not None and context.channel_id and context.user_id:
        deps.background.try_submit(announce.tell, deps.client, channel=context.channel_id,
                                   user=context.user_id, text=text)
    elif deps is not None and context.user_id and _from_home(body):
        # A click in App Home names no channel: the person reads it in their DM with the bot.
        deps.background.try_submit(requester.tell_in_dm, deps.client, user=context.user_id, text=text)
    return BoltResponse(status=200, body="")


# The rollback confirm step is the /rollback command's ephemeral answer: the bot may not
# be in that channel, and only the response URL reaches it.
_CONFIRM_STEP = frozenset({ActionId.ROLLBACK_CONFIRM.value, ActionId.ROLLBACK_CANCEL.value})


def _in_place(body: dict) -> str | None:
    """The response URL to answer a click through: one on an ephemeral message (the bot
    may not be in that channel), or on the rollback confirm step; else None."""
    url = body.get("response_url")
    if body.get("type") != "block_actions" or not isinstance(url, str) or not url:
        return None
    ephemeral = (body.get("container") or {}).get("is_ephemeral") is True
    return url if ephemeral or _action_id(body) in _CONFIRM_STEP else None


def _settles(error: BaseException, body: dict) -> bool:
    """Whether a refusal answers the confirm step for good, and so replaces it: a
    conflict, a refusal, a throttle do; an outage or a busy bot does not (click again)."""
    return (_action_id(body) in _CONFIRM_STEP and isinstance(error, ResolveMeQError)
            and not isinstance(error, Busy | LimiterUnavailable))


def _unexpected(error: BaseException) -> BoltResponse:
    error_id = uuid.uuid4().hex[:12]
    import sentry_sdk

    # The log record is what Sentry's logging integration turns into the event, so it
    # is written inside the scope that carries the error id.
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("error_id", error_id)
        log.error("unexpected error in a listener (error id %s): %s", error_id,
                  type(error).__name__, exc_info=error)
    # Answer 200: Slack would retry a 5xx, and a retry would repeat what failed.
    return BoltResponse(status=200, body="")


def _from_home(body: dict) -> bool:
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def _first_input(body: dict) -> str | None:
    """The block id of a submitted modal's first input, where its error is shown."""
    blocks = (body.get("view") or {}).get("blocks") or []
    return next((b["block_id"] for b in blocks if isinstance(b, dict) and b.get("type") == "input"
                 and isinstance(b.get("block_id"), str)), None)


def _action_id(body: dict) -> str:
    action = to_action(body)
    found = action.get("action_id") if isinstance(action, dict) else None
    return found if isinstance(found, str) else ""


def _what(body: dict) -> str:
    """The command, event type or button of a request, for the log."""
    if is_slash_command(body):
        what = body.get("command")
    elif is_event(body) and isinstance(body["event"], dict):
        what = body["event"].get("type")
    elif is_view_submission(body):
        what = (body.get("view") or {}).get("callback_id")
    else:
        what = _action_id(body)
    return repr(what)[:40]


def register(app: App) -> None:
    app.error(on_error)
