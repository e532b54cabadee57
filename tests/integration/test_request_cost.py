"""What one request costs the database, per kind of request, on PostgreSQL.

Each test sends one signed request through the real app in this process
(`tests/support/bolt_requests.py`) and counts, on the request's thread, the statements,
commits, rollbacks and liveness pings it sent (`tests/support/round_trips.py`); work
handed off after the ack (a decision, a redraw) is not the request's and is not
counted. The targets are issue 13's; the figures before and after are in
docs/BENCHMARKS.md ("Database round trips per request").
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text

from bot.domain import audit
from bot.views import ActionId, feedback_value, rating_action_id
from bot.workflows.runtime import Runtime
from models import AuditEvent, Ticket, TicketResolution
from tests.support.bolt_requests import listener_settings
from tests.support.chain import verify
from tests.support.databases import REDIS_URL
from tests.support.harness import REQUESTER, STRANGER, VPN, resolved_ticket, shown
from tests.support.round_trips import Cost, counting

SIGNING_KEY = "k" * 40

DM = {"type": "message", "channel_type": "im", "channel": "D0REQUESTER", "user": REQUESTER,
      "text": VPN, "ts": "1732528000.000200", "event_ts": "1732528000.000200"}


@pytest.fixture()
def listener_runtime(settings, pg_url, slack, namespace) -> Runtime:
    """The conftest's runtime, its audit chain signed as a deployment's should be (the
    signature is computed in the app: the key never goes to the database)."""
    return Runtime.from_settings(listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL,
                                                   audit_signing_key=SIGNING_KEY), namespace=namespace)


def _warm(engine) -> None:
    """A connection in the pool, as in a process that has served before."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _cost(bolt, engine, send) -> tuple[Cost, object]:
    _warm(engine)
    with counting(engine) as cost:
        answer = send()
    print(f"\n{cost}\n  " + "\n  ".join(cost.sql))
    return cost, answer


def test_a_requesters_star_rating_costs_at_most_three_round_trips_and_one_commit(
        bolt, listener_runtime, committing_factory):
    ticket_id = resolved_ticket(committing_factory)

    cost, answer = _cost(bolt, listener_runtime.engine, lambda: bolt.click(
        rating_action_id(4), feedback_value(ticket_id, score=4)))

    assert answer.status_code == 200
    with committing_factory() as session:
        resolution = session.scalars(select(TicketResolution)
                                     .where(TicketResolution.ticket_id == ticket_id)).one()
    assert resolution.satisfaction_score == 4  # the click did its work
    assert (cost.round_trips <= 3, cost.commits) == (True, 1), str(cost)
    # The pooled connection was healthy and was used: no new one in place of a ping.
    assert (cost.checkouts, cost.connects) == (1, 0), str(cost)


def test_a_requesters_yes_costs_at_most_three_round_trips_and_one_commit(
        bolt, listener_runtime, committing_factory):
    ticket_id = resolved_ticket(committing_factory)

    cost, answer = _cost(bolt, listener_runtime.engine, lambda: bolt.click(
        ActionId.FEEDBACK_YES, feedback_value(ticket_id)))

    assert answer.status_code == 200
    with committing_factory() as session:
        resolution = session.scalars(select(TicketResolution)
                                     .where(TicketResolution.ticket_id == ticket_id)).one()
    assert resolution.resolution_confirmed is True
    assert (cost.round_trips <= 3, cost.commits) == (True, 1), str(cost)


def test_a_strangers_refused_click_costs_at_most_two_round_trips_and_one_commit(
        bolt, listener_runtime, committing_factory):
    # The click's locking read also takes the audit chain's lock and reads its head for
    # a stranger; the refusal's row and its signed chain entry are then one INSERT.
    ticket_id = resolved_ticket(listener_runtime.sessions)  # chained, as the app writes it

    cost, answer = _cost(bolt, listener_runtime.engine, lambda: bolt.click(
        ActionId.FEEDBACK_YES, feedback_value(ticket_id), user=STRANGER))

    assert answer.status_code == 200
    with committing_factory() as session:
        denied = session.scalars(select(AuditEvent)
                                 .where(AuditEvent.event_type == audit.FEEDBACK_WRONG_USER)).all()
    assert [d.actor_id for d in denied] == [STRANGER]  # refused, and the refusal kept
    assert (cost.round_trips <= 2, cost.commits) == (True, 1), str(cost)
    report = verify(listener_runtime.engine, key=SIGNING_KEY.encode())
    assert report.ok and report.signatures_checked, report.problems  # chained, and signed


def test_a_ticket_acknowledgement_costs_at_most_two_round_trips_and_one_commit(
        bolt, listener_runtime, committing_factory):
    cost, answer = _cost(bolt, listener_runtime.engine, lambda: bolt.command("/ticket", VPN))

    with committing_factory() as session:
        [ticket] = session.scalars(select(Ticket)).all()
    assert f"#{ticket.ticket_id}" in shown(answer.json())
    assert (cost.round_trips <= 2, cost.commits) == (True, 1), str(cost)
    bolt.settled()


def test_a_dm_costs_at_most_two_round_trips_and_one_commit(bolt, listener_runtime,
                                                           committing_factory):
    cost, answer = _cost(bolt, listener_runtime.engine, lambda: bolt.event(DM))

    assert answer.status_code == 200
    with committing_factory() as session:
        [ticket] = session.scalars(select(Ticket)).all()
    assert ticket.source == "dm"
    assert (cost.round_trips <= 2, cost.commits) == (True, 1), str(cost)
    bolt.settled()


# No liveness ping, and a connection the server closed is not the next request's problem.

def test_a_connection_killed_between_two_requests_does_not_fail_the_second(
        bolt, listener_runtime, committing_factory, slack):
    engine = listener_runtime.engine
    backends: list[int] = []
    event.listen(engine, "connect", lambda conn, _record: backends.append(conn.info.backend_pid))
    first, second = resolved_ticket(committing_factory), resolved_ticket(committing_factory)
    assert bolt.click(rating_action_id(3), feedback_value(first, score=3)).status_code == 200
    bolt.settled()
    assert backends  # the pool holds the connections the first request and its redraw used

    with committing_factory() as session:  # the server ends them, as a restart or an admin would
        killed = session.execute(text("SELECT count(*) FROM pg_stat_activity, "
                                      "LATERAL pg_terminate_backend(pid) AS done "
                                      "WHERE pid = ANY(:pids) AND done"), {"pids": backends}).scalar()
    assert killed == len(set(backends))

    with counting(engine) as cost:
        answer = bolt.click(rating_action_id(5), feedback_value(second, score=5))

    assert answer.status_code == 200
    assert cost.pings == 0 and cost.commits == 1 and cost.connects >= 1, str(cost)
    with committing_factory() as session:
        scores = session.scalars(select(TicketResolution.satisfaction_score)
                                 .order_by(TicketResolution.ticket_id)).all()
    assert scores == [3, 5]  # the second click was saved
    bolt.settled()
    assert not [e for e in slack.ephemerals() if "couldn't save" in e["text"]]
