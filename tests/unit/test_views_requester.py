"""The requester's views: their open tickets in App Home, the Add detail modal, and the
words in a message's thread when its ticket opens."""

from __future__ import annotations

from bot.domain.requester import HOME_LIMIT, OpenTickets
from bot.views import ActionId, BlockId, CallbackId, home_view, parse_ticket_value
from bot.views.common import to_dicts
from bot.views.requester import add_detail_modal, my_tickets_blocks, opened_from_message
from models import TicketStatus
from tests.support import view_samples as s

HOSTILE = "<!channel> *VPN* & <https://evil.example|click> " + "x" * 400


def _mine(n: int, **fields) -> OpenTickets:
    tickets = [s.ticket(ticket_id=i + 1, **fields) for i in range(n)]
    return OpenTickets(tickets[:HOME_LIMIT], n)


def test_each_open_ticket_shows_its_state_who_has_it_and_two_buttons():
    ticket = s.ticket(ticket_id=7, issue_type="VPN drops", status=TicketStatus.ESCALATED,
                      escalation_priority="critical", assigned_team="Network", assigned_to=None)
    blocks = to_dicts(my_tickets_blocks([ticket], total=1))
    shown = s.all_text(blocks)
    assert "*#7* VPN drops" in shown
    assert "Escalated (critical priority) · with Network; nobody has taken it yet" in shown
    buttons = s.buttons(blocks)
    assert set(buttons) == {ActionId.MY_ADD_DETAIL, ActionId.MY_WITHDRAW}
    assert {parse_ticket_value(b["value"]) for b in buttons.values()} == {7}
    # Withdrawing asks first.
    assert buttons[ActionId.MY_WITHDRAW]["confirm"]["confirm"]["text"] == "Withdraw"


def test_a_person_holding_it_is_mentioned_and_the_bot_says_when_it_has_it():
    held = s.ticket(ticket_id=1, status=TicketStatus.IN_PROGRESS, assigned_to="UAGENT")
    bots = s.ticket(ticket_id=2, status=TicketStatus.AWAITING_USER, assigned_to=None, assigned_team=None)
    shown = s.all_text(to_dicts(my_tickets_blocks([held, bots], total=2)))
    assert "In progress · <@UAGENT> has it" in shown
    assert "Waiting for more detail from you · with me (the bot)" in shown


def test_people_text_is_escaped_and_cut():
    shown = s.all_text(to_dicts(my_tickets_blocks([s.ticket(ticket_id=1, issue_type=HOSTILE)], total=1)))
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown and "<https" not in shown
    assert len(shown) < 600


def test_no_open_tickets_says_so_and_many_fit_the_home_tab():
    assert "You have no open tickets" in s.all_text(to_dicts(my_tickets_blocks([], total=0)))
    view = home_view(s.stats(), is_admin=True, mine=_mine(25, issue_type=HOSTILE))
    s.assert_within_limits(view["blocks"], max_blocks=100)
    shown = s.all_text(view["blocks"])
    assert "Your open tickets" in shown and "and 15 more" in shown


def test_the_add_detail_modal_carries_the_ticket_and_quotes_the_request_escaped():
    modal = add_detail_modal(s.ticket(ticket_id=9, description=HOSTILE, assigned_to=None))
    assert modal["type"] == "modal" and modal["callback_id"] == CallbackId.ADD_DETAIL
    assert parse_ticket_value(modal["private_metadata"]) == 9
    assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"] == [BlockId.DETAIL_TEXT]
    shown = s.all_text(modal["blocks"])
    assert "<!channel>" not in shown and "look at your ticket again" in shown


def test_the_thread_is_told_who_asked_for_whom():
    ticket = s.ticket(ticket_id=3, user_id="UAUTHOR")
    assert opened_from_message(ticket, reporter_id="UHELPER").startswith(
        ":ticket: <@UHELPER> asked: I've opened ticket #3 for <@UAUTHOR>")
    assert "asked" not in opened_from_message(ticket, reporter_id="UAUTHOR")
