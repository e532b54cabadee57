"""A person's take and resolve from the team channel: who may, what is recorded, what an
admin can undo, and that the bot's record stays the bot's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.errors import InvalidInput, NotAuthorized, NotFound, RollbackConflict
from bot.core.settings import load_settings
from bot.domain import audit, feedback, rollback, snapshots, teamwork, tickets
from bot.domain.analytics import resolution_stats
from bot.domain.ratelimit import RollbackThrottle, make_storage
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    OutboxPurpose,
    OutboxStatus,
    PersonResolution,
    SlackOutbox,
    TicketResolution,
    TicketStatus,
)
from tests.support.factories import make_action, make_ticket

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
MEMBER, OTHER, STRANGER, ADMIN = "UMEMBER", "UOTHER", "USTRANGER", "UADMIN"
NETWORK_CHANNEL = "CNETWORK"


@pytest.fixture()
def team_settings(settings):
    return load_settings(database_url=settings.database_url, admin_user_ids=ADMIN,
                         team_channels=f"Network={NETWORK_CHANNEL}", escalation_channel="CESCALATE",
                         followup_delay="24h")


def members_of(channels: dict[str, set[str]], asked: list | None = None):
    """A membership check as the Slack layer gives it: who is in which channel."""
    def may_act_for(user: str):
        def check(channel):
            if asked is not None:
                asked.append(channel)
            return user == ADMIN or user in channels.get(channel, set())
        return check
    return may_act_for


may_act = members_of({NETWORK_CHANNEL: {MEMBER, OTHER}, "CESCALATE": {"UTRIAGE"}})


def _routed(session):
    """A ticket the bot routed to Network (ASSIGN_TO_TEAM)."""
    ticket = make_ticket(session, assigned_team="Network", created_at=NOW)
    make_action(session, ticket=ticket, action_type=ActionType.ASSIGN_TO_TEAM, now=NOW)
    return ticket


def _take(session, settings, ticket, user=MEMBER, now=LATER):
    return teamwork.take_ticket(session, ticket_id=ticket.ticket_id, user_id=user, settings=settings,
                                may_act=may_act(user), now=now)


def _resolve(session, settings, ticket, user=MEMBER, note="Reset the VPN profile", now=LATER):
    return teamwork.resolve_ticket(session, ticket_id=ticket.ticket_id, user_id=user, note=note,
                                   settings=settings, may_act=may_act(user), now=now)


def _throttle(settings, namespace):
    return RollbackThrottle(settings, make_storage(None), namespace=namespace)


# Take it ------------------------------------------------------------------------------

def test_a_member_takes_the_ticket_and_the_take_is_recorded_with_what_undoes_it(session, team_settings):
    ticket = _routed(session)
    before = snapshots.snapshot(ticket)

    result = _take(session, team_settings, ticket)

    assert result.changed and (result.team, result.previous) == ("Network", None)
    assert (ticket.assigned_to, ticket.status) == (MEMBER, TicketStatus.IN_PROGRESS)
    _, rows = tickets.history(session, ticket.ticket_id)
    take = rows[-1]
    assert (take.action_type, take.executed_by, take.autonomous) == (ActionType.TAKE, MEMBER, False)
    assert take.rollback_possible and take.confidence_score is None
    assert take.before_state == before and take.after_state == snapshots.snapshot(ticket)
    assert (take.before_state["assigned_to"], take.after_state["assigned_to"]) == (None, MEMBER)
    assert take.action_params == {"team": "Network", "assignee": MEMBER, "previous_assignee": None}


def test_taking_it_again_changes_nothing_and_another_member_takes_it_over(session, team_settings):
    ticket = _routed(session)
    _take(session, team_settings, ticket)

    assert _take(session, team_settings, ticket).changed is False
    over = _take(session, team_settings, ticket, user=OTHER, now=LATER + timedelta(minutes=1))

    assert over.changed and over.previous == MEMBER and ticket.assigned_to == OTHER
    takes = [r for r in tickets.history(session, ticket.ticket_id)[1] if r.action_type == ActionType.TAKE]
    assert [t.executed_by for t in takes] == [MEMBER, OTHER]


def test_a_stranger_is_refused_audited_and_changes_nothing(session, team_settings):
    ticket = _routed(session)
    before = snapshots.snapshot(ticket)

    with pytest.raises(NotAuthorized, match="Only members of Network's channel and helpdesk admins "
                                            "can take ticket"):
        _take(session, team_settings, ticket, user=STRANGER)

    assert snapshots.snapshot(ticket) == before
    [denied] = session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == audit.TEAM_ACTION_DENIED)).all()
    assert (denied.actor_id, denied.ticket_id) == (STRANGER, ticket.ticket_id)
    assert denied.detail == {"work": "take", "team": "Network", "channel": NETWORK_CHANNEL}
    assert [r.action_type for r in tickets.history(session, ticket.ticket_id)[1]] == [
        ActionType.ASSIGN_TO_TEAM]


def test_an_admin_may_act_on_any_team_and_a_failing_lookup_refuses(session, team_settings):
    ticket = _routed(session)
    assert _take(session, team_settings, ticket, user=ADMIN).changed

    def broken(channel):
        raise TimeoutError("Slack did not answer")

    with pytest.raises(NotAuthorized):
        teamwork.take_ticket(session, ticket_id=ticket.ticket_id, user_id=MEMBER,
                             settings=team_settings, may_act=broken, now=LATER)
    assert ticket.assigned_to == ADMIN


@pytest.mark.parametrize(("team", "channels", "escalation", "expected"), [
    ("Network", "Network=CNETWORK", "CESCALATE", "CNETWORK"),
    ("network", "Network=CNETWORK", "CESCALATE", "CNETWORK"),
    ("Security", "Network=CNETWORK", "CESCALATE", "CESCALATE"),
    (None, "Service Desk=CDESK", None, "CDESK"),
    ("Security", "Network=CNETWORK", None, None),
])
def test_the_channel_asked_about_is_the_tickets_teams(session, settings, team, channels, escalation,
                                                      expected):
    configured = load_settings(database_url=settings.database_url, team_channels=channels,
                               escalation_channel=escalation)
    ticket = make_ticket(session, assigned_team=team)
    asked: list = []
    check = members_of({expected: {MEMBER}} if expected else {}, asked)(MEMBER)

    if expected is None:
        with pytest.raises(NotAuthorized, match="No channel is set for Security"):
            teamwork.take_ticket(session, ticket_id=ticket.ticket_id, user_id=MEMBER, settings=configured,
                                 may_act=check)
    else:
        teamwork.take_ticket(session, ticket_id=ticket.ticket_id, user_id=MEMBER, settings=configured,
                             may_act=check)
    assert asked == [expected]
    assert teamwork.channel_of(ticket, configured) == expected


def test_a_resolved_or_missing_ticket_cannot_be_taken(session, team_settings):
    resolved = make_action(session, assigned_team="Network", now=NOW).ticket_id
    with pytest.raises(InvalidInput, match=f"Ticket #{resolved} is resolved already"):
        teamwork.take_ticket(session, ticket_id=resolved, user_id=MEMBER, settings=team_settings,
                             may_act=may_act(MEMBER))
    with pytest.raises(NotFound):
        teamwork.take_ticket(session, ticket_id=999999, user_id=MEMBER, settings=team_settings,
                             may_act=may_act(MEMBER))
    for bad in (0, -1, True, "12"):
        with pytest.raises(InvalidInput):
            teamwork.take_ticket(session, ticket_id=bad, user_id=MEMBER, settings=team_settings,
                                 may_act=may_act(MEMBER))


# Resolve -------------------------------------------------------------------------------

def test_a_resolve_closes_the_ticket_and_owes_the_requester_a_follow_up(session, team_settings):
    ticket = _routed(session)

    result = _resolve(session, team_settings, ticket, note="  Reset the VPN profile  ")

    assert (ticket.status, ticket.resolved_at, ticket.assigned_to) == (TicketStatus.RESOLVED, LATER, MEMBER)
    action, person = result.action, result.resolution
    assert (action.action_type, action.executed_by, action.agent_reasoning) == (
        ActionType.RESOLVE, MEMBER, "Reset the VPN profile")
    assert action.rollback_possible and action.after_state == snapshots.snapshot(ticket)
    assert (person.action_id, person.resolved_by, person.team, person.note) == (
        action.id, MEMBER, "Network", "Reset the VPN profile")
    assert (person.resolution_confirmed, person.followup_due_at) == (None, LATER + timedelta(hours=24))
    [followup] = session.scalars(select(SlackOutbox).where(
        SlackOutbox.purpose == OutboxPurpose.FOLLOWUP)).all()
    assert (followup.person_resolution_id, followup.resolution_id, followup.recipient) == (
        person.id, None, ticket.user_id)
    assert (followup.status, followup.next_attempt_at) == (OutboxStatus.PENDING, LATER + timedelta(hours=24))
    # The bot resolved nothing: its record has no row for this ticket.
    assert session.scalars(select(TicketResolution)).all() == []


@pytest.mark.parametrize(("note", "message"), [
    ("", "Write what you did"), ("   \n ", "Write what you did"), (None, "Write what you did"),
    ("x" * 3001, "3001 characters long; keep it to 3000"),
])
def test_a_resolve_without_a_usable_note_writes_nothing(session, team_settings, note, message):
    ticket = _routed(session)
    with pytest.raises(InvalidInput, match=message):
        _resolve(session, team_settings, ticket, note=note)
    assert ticket.status == TicketStatus.IN_PROGRESS
    assert session.scalars(select(PersonResolution)).all() == []
    assert len(tickets.history(session, ticket.ticket_id)[1]) == 1


def test_a_stranger_cannot_resolve_and_the_check_before_the_modal_refuses_too(session, team_settings):
    ticket = _routed(session)
    with pytest.raises(NotAuthorized):
        _resolve(session, team_settings, ticket, user=STRANGER)
    with pytest.raises(NotAuthorized):
        teamwork.check_may_resolve(session, ticket_id=ticket.ticket_id, user_id=STRANGER,
                                   settings=team_settings, may_act=may_act(STRANGER))
    details = [e.detail["work"] for e in session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == audit.TEAM_ACTION_DENIED))]
    assert details == ["resolve", "resolve"]
    assert teamwork.check_may_resolve(session, ticket_id=ticket.ticket_id, user_id=MEMBER,
                                      settings=team_settings, may_act=may_act(MEMBER)) is ticket
    _resolve(session, team_settings, ticket)
    with pytest.raises(InvalidInput, match="resolved already"):
        teamwork.check_may_resolve(session, ticket_id=ticket.ticket_id, user_id=MEMBER,
                                   settings=team_settings, may_act=may_act(MEMBER))
    with pytest.raises(InvalidInput, match="resolved already"):
        _resolve(session, team_settings, ticket, user=OTHER)


def test_after_the_bots_no_a_persons_resolution_is_rated_on_its_own_record(session, team_settings):
    bots = make_action(session, assigned_team="Network", now=NOW)
    ticket = tickets.get_ticket(session, bots.ticket_id)
    feedback.record_answer(session, ticket_id=ticket.ticket_id, user_id=ticket.user_id, solved=False,
                           default_team="Service Desk", now=NOW)
    person = _resolve(session, team_settings, ticket).resolution

    answered = feedback.record_answer(session, ticket_id=ticket.ticket_id, user_id=ticket.user_id,
                                      solved=True, default_team="Service Desk",
                                      person_resolution_id=person.id, now=LATER)
    feedback.record_rating(session, ticket_id=ticket.ticket_id, user_id=ticket.user_id, score=5,
                           person_resolution_id=person.id, now=LATER)

    assert answered.by_person and not answered.reopened
    bot_record = session.scalars(select(TicketResolution)).one()
    assert (bot_record.resolution_confirmed, bot_record.reopened, bot_record.satisfaction_score) == (
        False, True, None)
    assert (person.resolution_confirmed, person.satisfaction_score) == (True, 5)
    assert person.response_received_at == LATER
    [followup] = session.scalars(select(SlackOutbox).where(
        SlackOutbox.person_resolution_id == person.id)).all()
    assert (followup.status, followup.cancel_reason) == (OutboxStatus.CANCELLED, "answered")

    stats = resolution_stats(session, now=LATER)
    # The bot's No stays the bot's; the person's Yes and five stars are the person's.
    assert (stats.resolutions, stats.confirmed, stats.failed, stats.success_rate) == (1, 0, 1, 0.0)
    assert stats.average_rating is None
    people = stats.people
    assert (people.resolutions, people.confirmed, people.failed, people.success_rate) == (1, 1, 0, 1.0)
    assert (people.average_rating, people.ratings) == (5.0, 1)
    assert [(t.team, t.resolutions, t.success_rate) for t in stats.people_by_team] == [("Network", 1, 1.0)]
    assert [t.action_type for t in stats.by_action_type] == [ActionType.AUTO_RESOLVE]


def test_a_no_to_a_persons_resolution_reopens_it_to_their_team(session, team_settings):
    ticket = _routed(session)
    _take(session, team_settings, ticket)
    person = _resolve(session, team_settings, ticket, now=LATER + timedelta(minutes=1)).resolution

    result = feedback.record_answer(session, ticket_id=ticket.ticket_id, user_id=ticket.user_id,
                                    solved=False, default_team="Service Desk",
                                    person_resolution_id=person.id, now=LATER + timedelta(minutes=2))

    assert result.reopened and result.ticket_moved and result.by_person
    assert (ticket.status, ticket.assigned_team, ticket.assigned_to) == (TicketStatus.OPEN, "Network", MEMBER)
    reopen = tickets.history(session, ticket.ticket_id)[1][-1]
    assert reopen.action_type == ActionType.REOPEN
    assert reopen.action_params["person_resolution_id"] == person.id
    assert (person.reopened, person.resolution_confirmed) == (True, False)
    assert resolution_stats(session, now=LATER).people.reopened == 1


def test_feedback_names_a_resolution_of_this_ticket_and_only_the_requester_counts(session, team_settings):
    ticket = _routed(session)
    person = _resolve(session, team_settings, ticket).resolution
    other = make_ticket(session)

    with pytest.raises(NotFound, match="no answer from the helpdesk"):
        feedback.record_answer(session, ticket_id=other.ticket_id, user_id=other.user_id, solved=True,
                               default_team="Service Desk", person_resolution_id=person.id)
    with pytest.raises(feedback.NotRequester):
        feedback.record_rating(session, ticket_id=ticket.ticket_id, user_id=MEMBER, score=5,
                               person_resolution_id=person.id)
    [denied] = session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == audit.FEEDBACK_WRONG_USER)).all()
    assert denied.detail == {"kind": "rating", "score": 5, "person_resolution_id": person.id}
    assert person.satisfaction_score is None


# Rollback -----------------------------------------------------------------------------

def test_an_admin_rolls_back_a_take(session, team_settings, namespace):
    ticket = _routed(session)
    before = snapshots.snapshot(ticket)
    take = _take(session, team_settings, ticket).action

    result = rollback.rollback_action(session, ref=take.id.hex, admin_id=ADMIN, is_admin=True,
                                      reason="wrong person", throttle=_throttle(team_settings, namespace))

    assert snapshots.snapshot(ticket) == before and ticket.assigned_to is None
    assert result.restored["assigned_to"] == (MEMBER, None)


def test_rolling_back_a_resolve_withdraws_the_persons_resolution(session, team_settings, namespace):
    ticket = _routed(session)
    result = _resolve(session, team_settings, ticket)

    rollback.rollback_action(session, ref=result.action.id.hex, admin_id=ADMIN, is_admin=True,
                             reason="not actually fixed", throttle=_throttle(team_settings, namespace))

    assert ticket.status == TicketStatus.IN_PROGRESS and ticket.assigned_to is None
    person = result.resolution
    assert person.followup_due_at is None
    [followup] = session.scalars(select(SlackOutbox).where(
        SlackOutbox.person_resolution_id == person.id)).all()
    assert (followup.status, followup.cancel_reason) == (OutboxStatus.CANCELLED, "rolled back")
    with pytest.raises(InvalidInput, match="withdrawn"):
        feedback.record_answer(session, ticket_id=ticket.ticket_id, user_id=ticket.user_id, solved=True,
                               default_team="Service Desk", person_resolution_id=person.id)
    people = resolution_stats(session, now=LATER).people
    assert (people.resolutions, people.withdrawn, people.taken) == (0, 1, 0)


def test_the_bots_action_cannot_be_rolled_back_over_a_persons_take(session, team_settings, namespace):
    ticket = _routed(session)
    [routing] = tickets.history(session, ticket.ticket_id)[1]
    _take(session, team_settings, ticket)

    with pytest.raises(RollbackConflict, match="assigned_to is now 'UMEMBER'"):
        rollback.rollback_action(session, ref=routing.id.hex, admin_id=ADMIN, is_admin=True, reason="",
                                 throttle=_throttle(team_settings, namespace))


def test_an_action_recorded_before_people_could_take_tickets_still_rolls_back(session, team_settings,
                                                                              namespace):
    ticket = _routed(session)
    [routing] = tickets.history(session, ticket.ticket_id)[1]
    # As written before migration 0010: no assigned_to in the snapshots.
    routing.before_state = {k: v for k, v in routing.before_state.items() if k != "assigned_to"}
    routing.after_state = {k: v for k, v in routing.after_state.items() if k != "assigned_to"}
    session.flush()

    rollback.rollback_action(session, ref=routing.id.hex, admin_id=ADMIN, is_admin=True, reason="",
                             throttle=_throttle(team_settings, namespace))

    assert ticket.status == TicketStatus.NEW and ticket.assigned_to is None


def test_people_take_and_resolve_counts_in_the_stats_and_not_as_the_bots(session, team_settings):
    for n in range(3):
        ticket = _routed(session)
        _take(session, team_settings, ticket)
        if n:
            _resolve(session, team_settings, ticket)
    stats = resolution_stats(session, now=LATER)
    assert (stats.people.taken, stats.people.resolutions, stats.people.pending) == (3, 2, 2)
    assert stats.resolutions == 0
    assert [t.action_type for t in stats.by_action_type] == [ActionType.ASSIGN_TO_TEAM]
    assert session.scalars(select(ActionHistory.action_type).where(
        ActionHistory.action_type == ActionType.RESOLVE)).all() == [ActionType.RESOLVE] * 2
