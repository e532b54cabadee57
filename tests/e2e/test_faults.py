"""Faults end to end: PostgreSQL, Redis and Slack's Web API going down under one real
`resolvemeq serve`, and nothing secret leaving in its logs or its Sentry events.

The services are taken down for this server only: its DATABASE_URL, REDIS_URL and
SLACK_API_URL go through loopback proxies (`tests/tcp_proxy.py`) that a test cuts and
restores; the shared PostgreSQL and Redis never notice. Its SENTRY_DSN points at a
fake ingest (`tests/fake_sentry.py`), its bot token looks real and its database URL
carries a password, so every error these tests provoke is also a check that none of
those leave the process.

What is checked is what a person would notice: the answer Slack gets (and how fast),
the messages in the fake Slack, the rows in the real database, the server's log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from bot.core import clock
from bot.domain import audit
from bot.sandbox.standin import SlackStandIn
from bot.views import ActionId, feedback_value, rating_action_id
from models import (
    ActionHistory,
    ActionType,
    AgentCall,
    AuditEvent,
    OutboxPurpose,
    SlackOutbox,
    Ticket,
    TicketResolution,
    TicketStatus,
)
from tests.support.databases import E2E_REDIS_URL, clean_e2e
from tests.support.fake_agent import running_fake_agent, slow
from tests.support.fake_sentry import FakeSentry
from tests.support.faults import (  # the fixture runs the session-wide log scan
    ACK_BUDGET,
    BOT_TOKEN,
    DB_PASSWORD,
    VPN,
    about,
    actions_of,
    answered,
    assert_consistent,
    count,
    leaks,
    make_posts_due,
    port_of,
    resolution_of,
    run_jobs,
    secrets_of,
    seed_resolved_ticket,
    slash_ticket,
    start_server,
    ticket_number,
    tickets,
    timed,
)
from tests.support.harness import ADMIN, CHANNEL, REQUESTER, TEAM_ID, shown, wait_until
from tests.support.tcp_proxy import BLACKHOLE, TcpProxy

ALERTS = "CALERTS"  # given to `jobs run-once` only: the server itself runs no jobs (Celery mode)

# ----- one server whose PostgreSQL, Redis and Slack can each be cut ----------------------


@pytest.fixture(scope="module")
def sentry():
    with FakeSentry() as fake:
        yield fake


@pytest.fixture(scope="module")
def fslack():
    with SlackStandIn(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def agent():
    with running_fake_agent() as fake:
        yield fake


@pytest.fixture(scope="module")
def proxies(e2e_db_url, fslack):
    pg_url, redis_url = make_url(e2e_db_url), make_url(E2E_REDIS_URL)
    with TcpProxy(pg_url.host, pg_url.port or 5432) as pg, \
            TcpProxy(redis_url.host, redis_url.port or 6379) as rds, \
            TcpProxy("127.0.0.1", port_of(fslack.base_url)) as slk:
        yield {"pg": pg, "redis": rds, "slack": slk}


@pytest.fixture(scope="module")
def outage_server(proxies, e2e_db_url, fslack, sentry, agent):
    pg, rds, slk = proxies["pg"], proxies["redis"], proxies["slack"]
    database_url = make_url(e2e_db_url).set(host="127.0.0.1", port=pg.port, password=DB_PASSWORD)
    redis_url = make_url(E2E_REDIS_URL).set(host="127.0.0.1", port=rds.port)
    server = start_server(
        database_url=database_url.render_as_string(hide_password=False), slack=fslack,
        redis_url=redis_url.render_as_string(hide_password=False),
        SLACK_API_URL=f"http://{slk.address}/api/", SENTRY_DSN=sentry.dsn,
        AGENT_URL=agent.url, AGENT_TIMEOUT="5",
    )
    # Bolt asks auth.test once per process, on the first request: get that done now.
    assert server.event({"type": "app_home_opened", "user": REQUESTER, "tab": "home"}).status_code == 200
    fslack.wait_for("views.publish")
    yield server
    server.stop()


@pytest.fixture()
def down(outage_server, proxies, fslack, agent, e2e_engine):
    """The outage server on a clean slate; every proxy restored afterwards, whatever failed."""
    fslack.reset()
    agent.answer()
    yield outage_server
    for proxy in proxies.values():
        proxy.restore()
    clean_e2e(e2e_engine)
    fslack.reset()


# ----- Redis down: autonomy and rollbacks fail closed --------------------------------------


def test_redis_down_sends_tickets_to_people_and_tells_the_admin_why_rollback_is_paused(
        down, proxies, fslack, e2e_sessions):
    seeded, action_id = seed_resolved_ticket(e2e_sessions)
    proxies["redis"].cut()

    ticket_id = ticket_number(slash_ticket(down))
    ticket = answered(e2e_sessions, ticket_id)
    [action] = actions_of(e2e_sessions, ticket_id)
    assert (action.action_type, action.autonomous, ticket.status) == (
        ActionType.ESCALATE, False, TicketStatus.ESCALATED)
    assert action.action_params["triage"] is True
    assert action.action_params["suggestion"]["action_type"] == ActionType.AUTO_RESOLVE
    [answer] = [m for m in fslack.messages(CHANNEL) if about(ticket_id)(m)]
    assert "A person from *Service Desk* will pick this up" in shown(answer)
    assert "limiter unavailable" in shown(answer)
    assert resolution_of(e2e_sessions, ticket_id) is None
    with e2e_sessions() as session:
        assert session.scalars(select(AuditEvent.event_type)).all() == [audit.AUTONOMY_LIMITER_DOWN]
    # Autonomy failing closed is no longer silent: the next jobs pass alerts the admins.
    assert run_jobs(down, ALERTS_CHANNEL=ALERTS)["evaluate_alerts"] == 1
    [alert] = fslack.messages(ALERTS)
    assert alert["text"].startswith(
        "Alert: The autonomy limiter's store (REDIS_URL) could not be reached 1 time"), alert["text"]

    # An admin's rollback is paused, and the admin is told why, in time.
    response, seconds = timed(lambda: down.command("/rollback", action_id[:8], user=ADMIN))
    assert response.status_code == 200 and seconds < ACK_BUDGET
    assert response.json()["response_type"] == "ephemeral"
    assert "rate-limit store cannot be reached" in response.json()["text"]
    # A click needs no Redis: answered as usual.
    click, seconds = timed(lambda: down.click(ActionId.FEEDBACK_YES, feedback_value(seeded)))
    assert click.status_code == 200 and seconds < ACK_BUDGET
    wait_until(lambda: resolution_of(e2e_sessions, seeded).resolution_confirmed is True,
               what="the Yes recorded")
    with e2e_sessions() as session:
        assert session.get(Ticket, seeded).status == TicketStatus.RESOLVED  # nothing rolled back
        assert not session.scalars(select(ActionHistory).where(
            ActionHistory.action_type == ActionType.ROLLBACK)).all()

    proxies["redis"].restore()
    again = ticket_number(slash_ticket(down, "my vpn disconnects every few minutes at home"))
    assert answered(e2e_sessions, again).status == TicketStatus.RESOLVED
    [resumed] = actions_of(e2e_sessions, again)
    assert (resumed.action_type, resumed.autonomous) == (ActionType.AUTO_RESOLVE, True)
    preview = down.command("/rollback", action_id[:8], user=ADMIN)
    assert preview.json()["text"] == f"Roll back {action_id[:8]}?"
    assert_consistent(e2e_sessions)


# ----- PostgreSQL down ----------------------------------------------------------------------


def test_postgres_down_at_ack_time_is_said_plainly_saves_nothing_and_recovers(
        down, proxies, fslack, e2e_sessions):
    seeded, _ = seed_resolved_ticket(e2e_sessions)
    proxies["pg"].cut()

    health = down.http.get("/healthz")
    assert health.status_code == 503 and health.json()["db"] == "error"
    response = slash_ticket(down)
    said = response.json()
    assert said["response_type"] == "ephemeral"
    assert "can't reach the helpdesk database" in said["text"] and "nothing was saved" in said["text"]
    click, seconds = timed(lambda: down.click(ActionId.FEEDBACK_YES, feedback_value(seeded)))
    assert click.status_code == 200 and seconds < ACK_BUDGET
    [refusal] = fslack.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == REQUESTER and "couldn't save that" in refusal.args["text"]
    dm = {"type": "message", "channel_type": "im", "channel": "D0REQUESTER", "user": REQUESTER,
          "text": VPN, "ts": "1732528000.000200"}
    event, seconds = timed(lambda: down.event(dm))
    assert event.status_code == 200 and seconds < ACK_BUDGET
    [_, dm_refusal] = fslack.wait_for("chat.postEphemeral", count=2)
    assert "nothing was saved" in dm_refusal.args["text"]

    proxies["pg"].restore()
    assert [t.ticket_id for t in tickets(e2e_sessions)] == [seeded]
    assert resolution_of(e2e_sessions, seeded).response_received_at is None
    # Nothing was queued while it was down: the outbox holds only the seeded
    # resolution's follow-up, written with it.
    with e2e_sessions() as session:
        assert session.scalars(select(SlackOutbox.purpose)).all() == [OutboxPurpose.FOLLOWUP]
    assert_consistent(e2e_sessions)
    assert down.http.get("/healthz").status_code == 200
    ticket_id = ticket_number(slash_ticket(down))
    assert answered(e2e_sessions, ticket_id).status == TicketStatus.RESOLVED
    assert down.click(ActionId.FEEDBACK_YES, feedback_value(seeded)).status_code == 200
    wait_until(lambda: resolution_of(e2e_sessions, seeded).resolution_confirmed is True,
               what="the Yes recorded once the database is back")
    assert_consistent(e2e_sessions)


def test_postgres_unreachable_without_refusal_is_still_answered_in_time(down, proxies):
    proxies["pg"].cut(BLACKHOLE)
    response, seconds = timed(lambda: down.command("/ticket", VPN))
    assert response.status_code == 200 and "nothing was saved" in response.json()["text"]
    assert seconds < ACK_BUDGET, f"/ticket took {seconds:.2f}s to answer"


def test_a_server_started_while_postgres_is_down_says_so_and_serves_once_it_is_back(
        e2e_db_url, e2e_engine, e2e_sessions):
    url = make_url(e2e_db_url)
    with SlackStandIn() as fake, TcpProxy(url.host, url.port or 5432) as pg:
        pg.cut()
        server = start_server(
            database_url=url.set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False),
            slack=fake, redis_url=E2E_REDIS_URL, wait_healthy=False)
        try:
            health = server.http.get("/healthz")
            assert health.status_code == 503 and health.json() == {"db": "error", "broker": "ok"}
            said = slash_ticket(server).json()["text"]
            assert "can't reach the helpdesk database" in said and "nothing was saved" in said

            pg.restore()
            assert server.http.get("/healthz").status_code == 200
            ticket_id = ticket_number(slash_ticket(server))
            assert answered(e2e_sessions, ticket_id).status == TicketStatus.RESOLVED
            assert [t.ticket_id for t in tickets(e2e_sessions)] == [ticket_id]
        finally:
            server.stop()
            clean_e2e(e2e_engine)


def test_postgres_lost_during_a_decision_leaves_a_new_ticket_that_the_sweep_finishes(
        down, proxies, fslack, agent, e2e_sessions):
    agent.answer(slow(1.0))  # the agent takes a second; the database goes away meanwhile
    logged, asked = down.mark(), agent.count
    ticket_id = ticket_number(slash_ticket(down))
    wait_until(lambda: agent.count > asked, what="the agent asked")
    proxies["pg"].cut()
    wait_until(lambda: "background work failed" in down.text(since=logged), timeout=15,
               what="the decision failing")
    proxies["pg"].restore()

    # All or nothing: the ticket as stored at the ack, nothing of the decision.
    [ticket] = tickets(e2e_sessions)
    assert (ticket.ticket_id, ticket.status, ticket.agent_processed) == (ticket_id, TicketStatus.NEW, False)
    assert actions_of(e2e_sessions, ticket_id) == []
    assert count(e2e_sessions, TicketResolution) == count(e2e_sessions, SlackOutbox) == 0
    assert count(e2e_sessions, AgentCall) == 0
    assert fslack.calls("chat.postMessage") == []

    with e2e_sessions() as session:  # the sweep's grace period, passed
        session.execute(text("UPDATE tickets SET created_at = created_at - interval '5 minutes'"))
        session.commit()
    # The decision's claim is still on the ticket (releasing it needed the database):
    # the sweep leaves it alone until it expires, as it would a dead worker's.
    assert run_jobs(down)["sweep_new_tickets"] == 0
    with e2e_sessions() as session:
        session.execute(text("UPDATE tickets SET claimed_until = claimed_until - interval '5 minutes'"))
        session.commit()
    results = run_jobs(down)
    assert results["sweep_new_tickets"] == 1 and results["deliver_outbox"] == 0
    assert answered(e2e_sessions, ticket_id).status == TicketStatus.RESOLVED
    [post] = fslack.calls("chat.postMessage")
    assert about(ticket_id)(post.args) and post.outcome == "ok"
    assert_consistent(e2e_sessions)


# ----- Slack's Web API failing: the outbox retries, nothing lost, nothing twice -----------


def _gave_up_once(sessions, ticket_id: int) -> Callable[[], bool]:
    """The first delivery of the ticket's answer failed and a retry is scheduled."""
    def check():
        with sessions() as session:
            row = session.scalars(select(SlackOutbox).where(
                SlackOutbox.ticket_id == ticket_id,
                SlackOutbox.purpose == OutboxPurpose.TICKET_OUTCOME)).first()
        # ...and not at once: the next attempt waits out a backoff.
        return (row is not None and row.status == "pending" and row.attempts == 1
                and row.claimed_until is None and row.last_error != ""
                and row.next_attempt_at > clock.now() + timedelta(seconds=5))

    return check


def test_slack_429_5xx_and_refused_connections_are_retried_by_the_outbox_once_each(
        down, proxies, fslack, e2e_sessions):
    faults = {
        "503 on every attempt": lambda: fslack.fail_next("chat.postMessage", status=503, times=3),
        "429 with a long Retry-After": lambda: fslack.fail_next(
            "chat.postMessage", status=429, retry_after=120),
        "connection refused": lambda: proxies["slack"].cut(),
    }
    opened = {}
    for n, (name, fault) in enumerate(faults.items()):
        fault()
        ticket_id = ticket_number(slash_ticket(down, f"{VPN} (laptop {n})"))
        wait_until(_gave_up_once(e2e_sessions, ticket_id), timeout=15,
                   what=f"the first delivery to fail ({name})")
        proxies["slack"].restore()
        opened[name] = ticket_id
    assert fslack.messages(CHANNEL) == []

    assert make_posts_due(e2e_sessions) == 3
    assert run_jobs(down)["deliver_outbox"] == 3
    messages = fslack.messages(CHANNEL)
    for name, ticket_id in opened.items():
        [message] = [m for m in messages if about(ticket_id)(m)]
        delivered = [c for c in fslack.calls("chat.postMessage")
                     if about(ticket_id)(c.args) and c.outcome == "ok"]
        assert len(delivered) == 1, name
        assert answered(e2e_sessions, ticket_id).slack_message_ts == message["ts"], name
    # Nothing is left for a later pass to send again, but each requester's follow-up,
    # due tomorrow.
    with e2e_sessions() as session:
        rows = session.scalars(select(SlackOutbox)).all()
        assert {r.status for r in rows if r.purpose != OutboxPurpose.FOLLOWUP} == {"sent"}
        owed = [r for r in rows if r.purpose == OutboxPurpose.FOLLOWUP]
        assert len(owed) == 3 and {r.status for r in owed} == {"pending"}
        assert all(r.next_attempt_at > clock.now() + timedelta(hours=23) for r in owed)
    assert len(fslack.messages(CHANNEL)) == 3


def test_a_post_that_timed_out_but_reached_slack_is_not_posted_twice(down, fslack, e2e_sessions):
    fslack.delay("chat.postMessage", 11)  # past the client's 10 s timeout; Slack still posts
    ticket_id = ticket_number(slash_ticket(down))
    wait_until(_gave_up_once(e2e_sessions, ticket_id), timeout=20, what="the post timing out")
    fslack.wait_for("chat.postMessage", timeout=5)  # ...and Slack posting it anyway
    assert len([m for m in fslack.messages(CHANNEL) if about(ticket_id)(m)]) == 1

    make_posts_due(e2e_sessions)
    run_jobs(down)
    assert len([m for m in fslack.messages(CHANNEL) if about(ticket_id)(m)]) == 1


def _answer_row(sessions, ticket_id: int) -> SlackOutbox | None:
    with sessions() as session:
        return session.scalars(select(SlackOutbox).where(
            SlackOutbox.ticket_id == ticket_id,
            SlackOutbox.purpose == OutboxPurpose.TICKET_OUTCOME)).first()


def test_a_revoked_token_holds_the_answer_alerts_the_admins_and_posts_it_once_it_works(
        down, fslack, e2e_sessions):
    fslack.fail_next("chat.postMessage", error="token_revoked")
    ticket_id = ticket_number(slash_ticket(down))
    wait_until(lambda: (row := _answer_row(e2e_sessions, ticket_id)) is not None
               and row.status == "held", timeout=15, what="the answer held")
    assert fslack.messages(CHANNEL) == []

    # Still refused at the next pass: Slack is asked once, nothing is sent or lost, and
    # the admins hear of it (this fake refuses only the probe, so the alert gets out).
    fslack.fail_next("auth.test", error="token_revoked")
    results = run_jobs(down, ALERTS_CHANNEL=ALERTS)
    assert (results["deliver_outbox"], results["evaluate_alerts"]) == (0, 1)
    assert _answer_row(e2e_sessions, ticket_id).status == "held"
    [alert] = fslack.messages(ALERTS)
    assert alert["text"].startswith("Alert: 1 Slack message held"), alert["text"]
    assert "chat.postMessage: token_revoked" in alert["text"]

    # The token works again: the answer goes out once, and the alert resolves.
    results = run_jobs(down, ALERTS_CHANNEL=ALERTS)
    assert (results["deliver_outbox"], results["evaluate_alerts"]) == (1, 1)
    [answer] = [m for m in fslack.messages(CHANNEL) if about(ticket_id)(m)]
    assert answered(e2e_sessions, ticket_id).slack_message_ts == answer["ts"]
    assert fslack.messages(ALERTS)[-1]["text"].startswith("Resolved: No Slack messages held")
    assert run_jobs(down, ALERTS_CHANNEL=ALERTS)["deliver_outbox"] == 0
    assert len([m for m in fslack.messages(CHANNEL) if about(ticket_id)(m)]) == 1
    assert_consistent(e2e_sessions)


def test_slack_down_when_a_new_server_gets_its_first_request(e2e_db_url, e2e_engine,
                                                               e2e_sessions):
    # SLACK_TEAM_ID names the workspace, so the bot serves it without auth.test.
    with SlackStandIn() as fake, TcpProxy("127.0.0.1", port_of(fake.base_url)) as slk:
        slk.cut()
        server = start_server(database_url=e2e_db_url, slack=fake, redis_url=E2E_REDIS_URL,
                              SLACK_API_URL=f"http://{slk.address}/api/", SLACK_TEAM_ID=TEAM_ID)
        try:
            response, seconds = timed(lambda: server.command("/ticket", VPN))
            assert response.status_code == 200 and seconds < ACK_BUDGET
            assert "ticket #1" in response.text, response.text
            [ticket] = tickets(e2e_sessions)
            slk.restore()
            make_posts_due(e2e_sessions)
            run_jobs(server)
            assert answered(e2e_sessions, ticket.ticket_id).status == TicketStatus.RESOLVED
        finally:
            server.stop()
            clean_e2e(e2e_engine)


def test_a_server_that_cannot_learn_its_workspace_refuses_requests_until_it_can(
        e2e_db_url, e2e_engine, e2e_sessions):
    # No SLACK_TEAM_ID and auth.test unreachable: any workspace's request could be ours.
    with SlackStandIn() as fake, TcpProxy("127.0.0.1", port_of(fake.base_url)) as slk:
        slk.cut()
        server = start_server(database_url=e2e_db_url, slack=fake, redis_url=E2E_REDIS_URL,
                              SLACK_API_URL=f"http://{slk.address}/api/")
        try:
            logged = server.mark()
            for team in (TEAM_ID, "T0THEIRS"):
                response, seconds = timed(lambda team=team: server.command("/ticket", VPN, team=team))
                assert response.status_code == 503 and seconds < ACK_BUDGET
            wait_until(lambda: server.text(since=logged).count(
                "does not know its workspace yet") == 2, what="each refusal logged")
            assert tickets(e2e_sessions) == []

            slk.restore()  # auth.test answers at the next lookup (at most 5 s apart)
            accepted = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
                server.command("/ticket", VPN)), timeout=20, interval=0.5,
                what="a ticket accepted once the workspace is known")
            assert "ticket #1" in accepted.text
            assert server.command("/ticket", VPN, team="T0THEIRS").status_code == 403
            assert len(tickets(e2e_sessions)) == 1
        finally:
            server.stop()
            clean_e2e(e2e_engine)


# ----- nothing secret leaves: the log and Sentry (last: it reads every event above too) --


def _exception_types(event: dict) -> list[str]:
    return [v.get("type") for v in (event.get("exception") or {}).get("values") or []]


def _logged(event: dict) -> str:
    return str((event.get("logentry") or {}).get("message") or event.get("message") or "")


def test_no_token_password_or_signing_secret_reaches_sentry_or_the_log(
        down, proxies, fslack, sentry, e2e_sessions):
    # Normal traffic, with a token pasted into a ticket, as people do.
    pasted = "xoxp-2419137045-5210683924-9137045522-c0ffee0123456789abcdef"
    first = ticket_number(slash_ticket(down, f"My VPN keeps disconnecting. My token is {pasted}"))
    answered(e2e_sessions, first)
    assert down.click(ActionId.FEEDBACK_YES, feedback_value(first)).status_code == 200
    fslack.wait_for("chat.update")

    # A listener error: a slash command with no user_id (Slack always sends one), its
    # text carrying the token.
    body = urlencode({"command": "/ticket", "text": f"{VPN} {pasted}", "team_id": TEAM_ID,
                      "channel_id": CHANNEL, "trigger_id": "trig-no-user"})
    assert down.post(body).status_code == 200
    sentry.wait_for(lambda e: "KeyError" in _exception_types(e))

    # A background error: Slack refuses the channel, then answers the DM to the
    # requester with a channel that is not an id.
    fslack.fail_next("chat.postMessage", error="channel_not_found")
    original = fslack._methods["chat.postMessage"]
    fslack._methods["chat.postMessage"] = lambda args: {"channel": {"id": "D1"}, "ts": "1.0"}
    try:
        second = ticket_number(slash_ticket(down, f"{VPN} again, token {pasted}"))
        sentry.wait_for(lambda e: "ProgrammingError" in _exception_types(e))
    finally:
        fslack._methods["chat.postMessage"] = original
    with e2e_sessions() as session:  # its claim would otherwise hold the teardown for minutes
        session.execute(update(SlackOutbox).where(
            SlackOutbox.ticket_id == second, SlackOutbox.purpose != OutboxPurpose.FOLLOWUP).values(
            status="failed", claimed_until=None))
        session.commit()

    # A database cut during a click.
    proxies["pg"].cut()
    assert down.click(rating_action_id(5), feedback_value(first, score=5)).status_code == 200
    sentry.wait_for(lambda e: "the database failed" in _logged(e))
    proxies["pg"].restore()

    assert sentry.rejected == []
    assert len(sentry.events()) >= 3
    assert "[Filtered]" in sentry.text()  # there was something to scrub, and it was
    secrets = secrets_of(down.env)
    # The scan looks for the real values, and finds them where they are.
    assert BOT_TOKEN in secrets and DB_PASSWORD in secrets
    assert fslack.last("chat.postMessage").token == BOT_TOKEN
    assert len(leaks(f"Bearer {BOT_TOKEN} {DB_PASSWORD}", secrets)) == 3
    assert leaks(sentry.text(), secrets + (pasted,)) == []
    assert leaks(down.text(), secrets + (pasted,)) == []
