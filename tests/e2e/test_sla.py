"""SLA end to end: the embedded default (SQLite, jobs on the server's own thread) with
short targets (15 s to a first response: a warning at 12 s, a breach at 15 s, with the
job every second). A ticket routed to a team that nobody takes gets a warning and then a
breach notice in the team's channel, once each; /resolution-stats counts the breach.
"""

from __future__ import annotations

import time

from bot.sandbox.standin import SlackStandIn
from tests.support.harness import Server, shown, wait_until

TEAM = "CIDENTITY"
ACCESS = "I need access to the finance shared drive"


def _sla_posts(fake) -> list[str]:
    return [c.args["text"] for c in fake.calls("chat.postMessage")
            if c.args.get("channel") == TEAM and c.outcome == "ok" and "target" in c.args["text"]]


def test_an_untaken_ticket_warns_then_breaches_in_the_teams_channel_once_each(sqlite_url):
    with SlackStandIn() as fake:
        server = Server(database_url=sqlite_url, slack=fake, redis_url=None, JOB_INTERVAL="1s",
                        STATS_ACK_WAIT="2", TEAM_CHANNELS=f"Identity & Access={TEAM}",
                        SLA_TARGETS="critical=15s/1h,high=15s/1h,normal=15s/1h").start()
        try:
            assert server.command("/ticket", ACCESS).status_code == 200
            wait_until(lambda: [c for c in fake.calls("chat.postMessage") if c.args.get("channel") == TEAM],
                       what="the team notice")
            try:
                wait_until(lambda: len(_sla_posts(fake)) >= 2, timeout=30, what="the SLA warning and breach")
            except AssertionError:
                raise AssertionError(server.output()[-4000:]) from None
            time.sleep(2.5)  # two more passes of the job: nothing more to say
            posts = _sla_posts(fake)
            assert len(posts) == 2, posts
            assert "has used 80% of its first response target (1" in posts[0] and "s of 15s, " in posts[0]
            assert "missed its first response target (1" in posts[1] and "s of 15s, " in posts[1]
            said = server.command("/resolution-stats", "7").json()
            text = shown(said)
            assert "Service levels" in text
            line = next(line for line in text[text.index("Service levels"):].splitlines()
                        if line.startswith("Identity"))
            assert line.split()[-4] == "0/1", line  # first response: none met, one breached
        finally:
            server.stop()
