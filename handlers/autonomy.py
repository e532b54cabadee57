"""/autonomy status|pause [reason]|resume|shadow [reason]: the switch over acting alone;
/autonomy experiment [status|stop [reason]]: the THRESHOLD_EXPERIMENT A/B test. For admins
(ADMIN_USER_IDS, ADMIN_GROUPS, asked at the time of the command).

The change, its audit row and its announcement are written in the request's
transaction and committed by the acknowledgement; the announcement is sent after it.
"""

from __future__ import annotations

from slack_bolt import Ack
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import InvalidInput, NotAuthorized
from bot.domain import audit
from bot.views.autonomy import USAGE
from bot.views.escape import from_slack_text
from bot.workflows import autonomy
from handlers.deps import SlackDeps
from handlers.routing import Routes
from models import AutonomyMode

MODES = {"pause": AutonomyMode.PAUSED, "resume": AutonomyMode.ON, "shadow": AutonomyMode.SHADOW}
NOT_ADMIN = "Only helpdesk admins can use /autonomy."


def autonomy_command(ack: Ack, command: dict, session: Session, deps: SlackDeps) -> None:
    user = command["user_id"]
    verb, _, reason = from_slack_text(command.get("text") or "").strip().partition(" ")
    verb = verb.lower() or "status"
    if verb not in ("status", "experiment") and verb not in MODES:
        raise InvalidInput(USAGE)
    sub, _, why = reason.strip().partition(" ")
    if verb == "experiment" and sub.lower() not in ("", "status", "stop"):
        raise InvalidInput(USAGE)
    if not deps.is_admin(user):
        audit.record(session, audit.AUTONOMY_DENIED, actor_id=user, detail={"command": verb})
        raise NotAuthorized(NOT_ADMIN)
    if verb == "status":
        text, blocks = autonomy.status(session, deps.runtime)
        ack(response_type="ephemeral", text=text, blocks=blocks)
        return
    if verb == "experiment":
        _experiment(ack, session, deps, user, stop=sub.lower() == "stop", reason=why.strip())
        return
    switched = autonomy.switch(session, deps.runtime, MODES[verb], actor_id=user, reason=reason.strip())
    text, blocks = views.autonomy_changed(switched.change, announced=bool(switched.owed))
    ack(response_type="ephemeral", text=text, blocks=blocks)
    if switched.owed:
        deps.background.try_submit(autonomy.announce, deps.runtime, deps.client, switched.owed)


def _experiment(ack: Ack, session: Session, deps: SlackDeps, user: str, *, stop: bool, reason: str) -> None:
    if not stop:
        text, blocks = autonomy.experiment_status(session)
        ack(response_type="ephemeral", text=text, blocks=blocks)
        return
    stopped = autonomy.stop_experiment(session, deps.runtime, actor_id=user, reason=reason)
    text, blocks = views.experiment_stopped(stopped.results, announced=bool(stopped.owed))
    ack(response_type="ephemeral", text=text, blocks=blocks)
    if stopped.owed:
        deps.background.try_submit(autonomy.announce, deps.runtime, deps.client, stopped.owed)


def register(routes: Routes) -> None:
    routes.command("/autonomy")(autonomy_command)
