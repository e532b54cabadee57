"""Routing (handlers/routing.py): one Bolt listener per kind of request finds the
handler by the request's own id. Each button, command and event still reaches its
handler; what no handler knows gets the answer it got before the routers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.views import ActionId, feedback_value, rating_action_id
from handlers import (
    admin,
    all_routes,
    approvals,
    autonomy,
    commands,
    feedback,
    home,
    message_tickets,
    messages,
    requester,
    teamwork,
)
from handlers.routing import Routes
from models import TicketResolution
from tests.support.harness import REQUESTER, resolved_ticket

# Every button our views draw, and the handler it reached when each had its own listener.
BUTTONS = {
    ActionId.FEEDBACK_YES: feedback.yes,
    ActionId.FEEDBACK_NO: feedback.no,
    ActionId.WHY: feedback.why,
    ActionId.ROLLBACK_CONFIRM: admin.confirm,
    ActionId.ROLLBACK_CANCEL: admin.cancel,
    ActionId.TEAM_TAKE: teamwork.take,
    ActionId.TEAM_RESOLVE: teamwork.start_resolve,
    ActionId.ROLLBACK_APPROVE: approvals.approve,
    ActionId.ROLLBACK_REJECT: approvals.start_reject,
    ActionId.MY_ADD_DETAIL: requester.start_detail,
    ActionId.MY_WITHDRAW: requester.withdraw,
    **{rating_action_id(n): feedback.rate for n in range(1, 6)},
    **{f"nps_{n}": feedback.nps for n in range(11)},
}
COMMANDS = {"/ticket": commands.open_ticket, "/history": commands.show_history,
            "/rollback": commands.start_rollback, "/resolution-stats": commands.show_stats,
            "/autonomy": autonomy.autonomy_command}
EVENTS = {"message": messages.message, "app_mention": messages.mention,
          "reaction_added": message_tickets.reaction, "app_home_opened": home.home_opened}


@pytest.fixture(scope="module")
def routes() -> Routes:
    return all_routes()  # what register_all binds to the app


def _said(slack) -> list[str]:
    # auth.test is the app learning its workspace at start, not an answer.
    return [c.method for c in slack.calls() if c.method != "auth.test"]


def _handler(router, key):
    found = router.find(key)
    return found[0] if found is not None else None


@pytest.mark.parametrize("action_id", list(BUTTONS))
def test_each_button_reaches_its_handler(routes, action_id):
    assert _handler(routes.actions, str(action_id)) is BUTTONS[action_id]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_reaches_its_handler(routes, command):
    assert _handler(routes.commands, command) is COMMANDS[command]


@pytest.mark.parametrize("event_type", list(EVENTS))
def test_each_event_reaches_its_handler(routes, event_type):
    assert _handler(routes.events, event_type) is EVENTS[event_type]


@pytest.mark.parametrize("action_id", ["rate_0", "rate_6", "nps_11", "feedback_yes_", "",
                                       "FEEDBACK_YES"])
def test_an_id_close_to_a_buttons_reaches_no_handler(routes, action_id):
    assert routes.actions.find(action_id) is None


def test_two_handlers_for_one_id_are_refused():
    routes = Routes()
    routes.action("rate_1")(feedback.rate)
    with pytest.raises(ValueError):
        routes.action("rate_1")(feedback.rate)
    with pytest.raises(ValueError):  # the pattern would take the exact id's clicks
        routes.action(re.compile(r"^rate_[1-5]$"))(feedback.rate)


def test_a_handler_naming_an_argument_the_router_lacks_is_refused():
    def needs_client(ack, client):
        ack()

    with pytest.raises(ValueError):
        Routes().action("x")(needs_client)


# Through the real app: what Slack gets back, and what the person sees.

def test_an_unknown_button_is_acknowledged_with_an_empty_200_and_nothing_said(bolt, slack):
    answer = bolt.click("a_button_of_an_old_version", "t=1")

    assert (answer.status_code, answer.text) == (200, "")
    bolt.settled()
    assert _said(slack) == []


def test_an_unknown_event_is_acknowledged_with_an_empty_200(bolt, slack):
    answer = bolt.event({"type": "channel_created", "channel": {"id": "CNEW"}})

    assert (answer.status_code, answer.text) == (200, "")
    bolt.settled()
    assert _said(slack) == []


def test_an_unknown_command_is_not_handled_as_before(bolt):
    answer = bolt.command("/not-ours", "hello")

    assert answer.status_code == 404


def test_a_star_click_through_the_router_is_recorded(bolt, committing_factory):
    ticket_id = resolved_ticket(committing_factory)

    answer = bolt.click(rating_action_id(4), feedback_value(ticket_id, score=4), user=REQUESTER)

    assert answer.status_code == 200
    with committing_factory() as session:
        score = session.scalars(select(TicketResolution.satisfaction_score)
                                .where(TicketResolution.ticket_id == ticket_id)).one()
    assert score == 4
