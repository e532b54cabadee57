"""Private answers and the per-person ticket limit, end to end: two real `resolvemeq
serve` processes sharing PostgreSQL and Redis, spoken to over signed HTTP as Slack does.

A /ticket typed in an ordinary channel is acknowledged ephemerally and answered by DM;
the channel gets nothing. TICKET_RATE_LIMIT is one budget for both processes: past it
the person is refused, whichever process they reach, and nothing is stored.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.sandbox.standin import SlackStandIn
from bot.views import ActionId
from models import Ticket
from tests.support.databases import E2E_REDIS_URL, clean_e2e
from tests.support.harness import REQUESTER, VPN, Server, shown, wait_until

GENERAL = "CGENERAL"


@pytest.fixture(scope="module")
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture(scope="module")
def servers(fake, e2e_db_url, e2e_engine):
    clean_e2e(e2e_engine)
    started = [Server(database_url=e2e_db_url, slack=fake, redis_url=E2E_REDIS_URL,
                      TICKET_RATE_LIMIT="2/hour") for _ in range(2)]
    try:
        for server in started:
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()
        clean_e2e(e2e_engine)


def _count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Ticket))


def test_private_answers_and_one_limit_across_processes(servers, fake, e2e_sessions):
    first, second = servers
    dm = fake.dm_channel(REQUESTER)

    ack = first.command("/ticket", VPN, channel=GENERAL)
    said = ack.json()
    assert said["response_type"] == "ephemeral" and "send you my answer by DM" in shown(said)
    [answer] = fake.wait_for("chat.postMessage")
    # Posted to the requester's id: Slack opens the app's DM with them and names it.
    assert answer.args["channel"] == REQUESTER and answer.response["channel"] == dm
    assert VPN in shown(answer.args)
    yes = next(e for b in answer.args["blocks"] for e in b.get("elements") or []
               if e.get("action_id") == ActionId.FEEDBACK_YES)
    assert second.click(ActionId.FEEDBACK_YES, yes["value"], channel=dm,
                        message_ts=answer.response["ts"]).status_code == 200
    [update] = fake.wait_for("chat.update")
    assert update.args["channel"] == dm and "You said this solved it" in shown(update.args)

    # The second ticket, on the other process, uses the rest of the shared budget.
    assert "Got it" in shown(second.command("/ticket", "the printer on floor 3 is jammed",
                                            channel=GENERAL).json())
    for server in (first, second):
        refused = server.command("/ticket", "and my monitor flickers", channel=GENERAL).json()
        assert refused["response_type"] == "ephemeral"
        assert "limit of 2 tickets per hour" in refused["text"]
        assert "didn't save this one" in refused["text"]
    assert _count(e2e_sessions) == 2

    wait_until(lambda: len(fake.calls("chat.postMessage")) >= 2, what="the second answer")
    assert fake.messages(GENERAL) == []
    assert [c for c in fake.calls() if c.args.get("channel") == GENERAL] == []
