"""A ticket from someone's message: a :ticket: reaction, or the message shortcut
"Create a ticket".

The ticket is the author's and is opened once per message (a unique key on the
message, `bot.domain.message_tickets`). For a reaction the message is read from Slack
before the ack: a slow read only makes Slack retry the event, and a retry finds the
ticket the first delivery opened. The ack commits the ticket and the word owed in the
message's thread; then the decision runs off the request path and answers there.
Someone asking again for a message that has its ticket is told so, only them.
"""

from __future__ import annotations

from slack_bolt import Ack, BoltRequest
from sqlalchemy.orm import Session

from bot import views
from bot.core.errors import InvalidInput
from bot.domain import message_tickets
from bot.domain.message_tickets import Message
from bot.views import CallbackId
from bot.workflows import announce, deferred, dispatch
from bot.workflows import requester as flows
from bot.workflows.dispatch import DecisionKind
from handlers.deps import SlackDeps
from handlers.routing import Routes
from models import TicketSource

REACTION = "ticket"
CANNOT_READ = ("I couldn't read that message. If it is in a private channel or a DM, "
               "invite me there first.")


def reaction(ack: Ack, body: dict, event: dict, request: BoltRequest, session: Session,
             deps: SlackDeps) -> None:
    item = event.get("item") or {}
    channel, ts = item.get("channel"), item.get("ts")
    if event.get("reaction") != REACTION or item.get("type") != "message" or not channel or not ts:
        ack()
        return
    message = flows.fetch_message(deps.client, str(channel), str(ts))
    if message is None:
        raise InvalidInput(CANNOT_READ)
    # Slack retrying this event (the read was slow) finds the ticket the first delivery
    # opened; the reactor is not told it "already" has one.
    retry = bool(request.headers.get("x-slack-retry-num"))
    _open(ack, session, deps, message, reporter=event.get("user"), source=TicketSource.REACTION,
          team_id=body.get("team_id"), quiet=retry)


def shortcut(ack: Ack, body: dict, session: Session, deps: SlackDeps) -> None:
    channel = (body.get("channel") or {}).get("id")
    if not channel:
        raise InvalidInput(CANNOT_READ)
    message = flows.message_from_payload(body.get("message") or {}, channel_id=channel)
    _open(ack, session, deps, message, reporter=(body.get("user") or {}).get("id"),
          source=TicketSource.SHORTCUT, team_id=(body.get("team") or {}).get("id"))


def _open(ack: Ack, session: Session, deps: SlackDeps, message: Message, *, reporter: str | None,
          source: str, team_id: str | None, quiet: bool = False) -> None:
    result = message_tickets.open_from_message(session, message, reporter_id=reporter or "",
                                               source=source, team_id=team_id)
    ticket_id = result.ticket.ticket_id
    if not result.created:
        ack()
        if reporter and not quiet:
            deps.background.try_submit(announce.tell, deps.client, channel=message.channel_id,
                                       user=reporter, text=views.message_has_ticket(ticket_id), blocks=[])
        return
    owed = flows.enqueue_opened(session, result.ticket, reporter_id=reporter)
    # Through the dispatch seam, like any new ticket; the word that it is open is sent
    # first, where the decision runs, so it comes before the answer in the thread.
    with dispatch.decision_slot(deps.runtime) as slot:
        if slot is None:
            # Stored all the same: the sweep decides on it; the thread hears why it waits.
            deferred.enqueue_saved_while_busy(session, result.ticket)
        ack()
        if slot is not None:
            slot.dispatch(ticket_id, DecisionKind.NEW, owed)


def register(routes: Routes) -> None:
    routes.event("reaction_added")(reaction)
    routes.message_shortcut(CallbackId.CREATE_TICKET.value)(shortcut)
