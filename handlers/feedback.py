"""The requester's answer on a resolution: Yes/No, 1-5 stars, "Why?", and the optional
"What didn't work?" modal a No opens (the No reopens the ticket at once; the words,
when submitted, reach the team's reopen notice).

The same buttons answer the bot's resolution ("t=12") and a person's ("t=12;p=3"): the
value says which record the answer lands on. Parse the button strictly (a tampered
value stores nothing), record the answer in the
request's transaction (only the requester's counts; a stranger's click is refused and
audited), acknowledge (which commits), then hand the redraw of the message off the request path
(a worker's task, or this process's pool: bot.workflows.redraws).
Refusals and outages are raised and told to the clicker by `handlers.errors`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from slack_bolt import Ack
from sqlalchemy.orm import Session

from bot import views
from bot.core import clock
from bot.core.errors import InvalidInput
from bot.domain import feedback, surveys, tickets
from bot.domain.feedback import FeedbackResult
from bot.views import ActionId, BlockId, CallbackId
from bot.workflows import announce, redraws
from bot.workflows import teamwork as team_notices
from handlers.deps import SlackDeps
from handlers.routing import Routes

log = logging.getLogger(__name__)
T = TypeVar("T")

INVALID_BUTTON = "That button is not valid any more. Nothing was recorded."
INVALID_FORM = "This form is not valid any more. Close it; your No was recorded."


def yes(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    _answer(ack, body, action, session, deps, solved=True)


def no(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    result = _answer(ack, body, action, session, deps, solved=False)
    if result.resolution.resolution_confirmed is False and body.get("trigger_id"):
        # Reopened already; the words are optional. Here, not on the background
        # executor: the trigger is valid for 3 s from the click.
        announce.open_reason_modal(deps.client, trigger_id=body["trigger_id"], result=result)


def submit_reason(ack: Ack, body: dict, view: dict, session: Session, deps: SlackDeps) -> None:
    user, _, _ = _where(body)
    # private_metadata comes back from the client: read strictly, then re-checked.
    ticket_id, person_resolution_id = _form(view.get("private_metadata"))
    result = feedback.record_reason(session, ticket_id=ticket_id, user_id=user or "", text=_reason(view),
                                    person_resolution_id=person_resolution_id)
    if result.changed:
        team_notices.add_requester_said(session, result)
    ack()
    if result.changed:
        redraws.hand_off(deps.runtime, redraws.team_notices_of(ticket_id))


def rate(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user, channel, message_ts = _where(body)
    ticket_id, person_resolution_id, score = _button(action, _stars)
    result = feedback.record_rating(session, ticket_id=ticket_id, user_id=user, score=score,
                                    person_resolution_id=person_resolution_id)
    ack()
    _redraw(deps, result, channel, message_ts)


def nps(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    """A number on a follow-up DM's NPS question: stored (a second click changes it),
    then the DM is redrawn with the answer."""
    user, channel, message_ts = _where(body)
    outbox_id, score = _button(action, _nps)
    surveys.record_nps(session, outbox_id=outbox_id, user_id=user, score=score, now=clock.now())
    ack()
    if channel and message_ts:
        redraws.hand_off(deps.runtime, redraws.nps_answer(channel=channel, message_ts=message_ts))


def why(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps) -> None:
    user, channel, _ = _where(body)
    row = tickets.action_by_id(session, _button(action, _action_ref))
    text, blocks = views.reasoning_message(row)
    ack()
    if channel and user:
        deps.background.try_submit(announce.tell, deps.client, channel=channel, user=user,
                                   text=text, blocks=blocks)


def _answer(ack: Ack, body: dict, action: dict, session: Session, deps: SlackDeps, *,
            solved: bool) -> FeedbackResult:
    user, channel, message_ts = _where(body)
    ticket_id, person_resolution_id = _button(action, _yes_no)
    settings = deps.runtime.settings
    result = feedback.record_answer(session, ticket_id=ticket_id, user_id=user, solved=solved,
                                    default_team=settings.default_team,
                                    person_resolution_id=person_resolution_id)
    # A "No" owes notices, written with the answer so they survive a crash after it.
    owed = announce.enqueue_reopen_notices(session, result, settings, channel=channel,
                                           message_ts=message_ts) if channel and message_ts else []
    ack()
    _redraw(deps, result, channel, message_ts, owed)
    return result


def _redraw(deps: SlackDeps, result: FeedbackResult, channel: str | None, message_ts: str | None,
            owed: Sequence[int] = ()) -> None:
    # On the workers with DECIDE_ON=workers, else this process's pool (bot.workflows.redraws).
    if result.changed and channel and message_ts:
        redraws.hand_off(deps.runtime, redraws.answer(result, channel=channel, message_ts=message_ts,
                                                      owed=owed))


def _where(body: dict) -> tuple[str, str | None, str | None]:
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    # No user id is nobody: only the requester may answer, and "" is nobody's.
    return (body.get("user") or {}).get("id") or "", channel, container.get("message_ts")


# Buttons come back from the client: each is read strictly, and anything our views
# would not have written is refused before the database is touched.

def _button(action: dict, read: Callable[[dict], T]) -> T:
    try:
        return read(action)
    except ValueError:
        log.warning("refused a feedback click with a malformed button value")
        raise InvalidInput(INVALID_BUTTON) from None


def _yes_no(action: dict) -> tuple[int, int | None]:
    ticket_id, person_resolution_id, score = views.parse_feedback_target(action.get("value") or "")
    if score is not None:
        raise ValueError("a Yes/No button carries no score")
    return ticket_id, person_resolution_id


def _stars(action: dict) -> tuple[int, int | None, int]:
    ticket_id, person_resolution_id, score = views.parse_feedback_target(action.get("value") or "")
    if score is None or views.parse_rating_action_id(action.get("action_id", "")) != score:
        raise ValueError("rating button and value disagree")
    return ticket_id, person_resolution_id, score


def _nps(action: dict) -> tuple[int, int]:
    return views.parse_nps(action.get("action_id") or "", action.get("value") or "")


def _form(value: object) -> tuple[int, int | None]:
    try:
        ticket_id, person_resolution_id, score = views.parse_feedback_target(value)  # type: ignore[arg-type]
        if score is not None:
            raise ValueError("the form carries no score")
    except ValueError:
        log.warning("refused a feedback form with malformed metadata")
        raise InvalidInput(INVALID_FORM) from None
    return ticket_id, person_resolution_id


def _reason(view: dict) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(BlockId.FEEDBACK_REASON) or {}
    # Left empty, Slack sends None: nothing to add, like anything that is not text.
    text = (values.get(ActionId.FEEDBACK_REASON) or {}).get("value")
    return text if isinstance(text, str) else ""


def _action_ref(action: dict) -> uuid.UUID:
    return views.parse_why_value(action.get("value") or "")


def register(routes: Routes) -> None:
    routes.action(ActionId.FEEDBACK_YES.value)(yes)
    routes.action(ActionId.FEEDBACK_NO.value)(no)
    routes.action(views.RATING_ACTION_RE)(rate)
    routes.action(ActionId.WHY.value)(why)
    routes.action(views.NPS_ACTION_RE)(nps)
    routes.view(CallbackId.FEEDBACK_REASON.value)(submit_reason)
