"""The chain's head posted to AUDIT_CHANNEL once a day, and `audit verify --anchors`
reading it back from Slack: a chain rewritten whole passes the hashes but not the anchors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.settings import Settings, load_settings
from bot.delivery.anchors import read_anchors
from bot.delivery.slack_client import make_web_client
from bot.platform import cli
from bot.sandbox.standin import SlackStandIn
from bot.views.audit import anchor_text, parse_anchor
from bot.workflows.audit_anchor import ANCHOR_INTERVAL, post_anchor
from bot.workflows.runtime import Runtime
from models import OutboxPurpose, OutboxStatus, SlackOutbox, make_engine, transaction
from tests.support.chain import rewrite_chain_from
from tests.support.factories import make_action

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CHANNEL = "CAUDIT01"


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture(params=["postgresql", "sqlite"])
def runtime(request, fake, sqlite_url, monkeypatch):
    for name in list(__import__("os").environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        request.getfixturevalue("committing_factory")  # empties the tables after
    else:
        url = sqlite_url
    settings = load_settings(database_url=url, slack_api_url=fake.base_url, slack_bot_token=fake.token,
                             audit_channel=CHANNEL)
    for name, value in (("DATABASE_URL", url), ("SLACK_API_URL", fake.base_url),
                        ("SLACK_BOT_TOKEN", fake.token), ("AUDIT_CHANNEL", CHANNEL)):
        monkeypatch.setenv(name, value)
    built = Runtime.from_settings(settings)
    yield built
    built.engine.dispose()


def _act(runtime, *, now):
    with transaction(runtime.sessions) as session:
        return make_action(session, now=now, created_at=now)


def test_the_head_is_posted_once_a_day_and_read_back(runtime, fake):
    client = make_web_client(runtime.settings)
    assert post_anchor(runtime.sessions, client, runtime.settings, now=NOW) == 0  # empty chain
    _act(runtime, now=NOW)
    assert post_anchor(runtime.sessions, client, runtime.settings, now=NOW) == 1
    assert post_anchor(runtime.sessions, client, runtime.settings, now=NOW + timedelta(hours=23)) == 0
    second = _act(runtime, now=NOW + timedelta(hours=23))
    assert post_anchor(runtime.sessions, client, runtime.settings, now=NOW + ANCHOR_INTERVAL) == 1
    posted = fake.messages(CHANNEL)
    assert [parse_anchor(m["text"])[0] for m in posted] == [1, 2]
    assert "resolvemeq audit verify --anchors" in posted[0]["text"]
    with transaction(runtime.sessions) as session:
        rows = session.scalars(select(SlackOutbox).where(
            SlackOutbox.purpose == OutboxPurpose.AUDIT_ANCHOR)).all()
    assert [r.status for r in rows] == [OutboxStatus.SENT, OutboxStatus.SENT]
    anchors = read_anchors(client, CHANNEL)
    assert [(a.seq, a.hash) for a in anchors] == [parse_anchor(m["text"]) for m in posted]
    assert second.id  # the second anchor is the head after it


def test_only_the_bots_own_posts_are_anchors(runtime, fake):
    _act(runtime, now=NOW)
    client = make_web_client(runtime.settings)
    post_anchor(runtime.sessions, client, runtime.settings, now=NOW)
    # Someone in the channel pastes an anchor of their own making.
    fake.post_as_person(CHANNEL, "UMALLORY", anchor_text(1, "f" * 64, None, NOW))
    assert [a.hash for a in read_anchors(client, CHANNEL)] != ["f" * 64]
    assert len(read_anchors(client, CHANNEL)) == 1


def test_verify_with_anchors_sees_a_chain_rewritten_whole(runtime, fake, capsys):
    first = _act(runtime, now=NOW)
    _act(runtime, now=NOW)
    client = make_web_client(runtime.settings)
    assert post_anchor(runtime.sessions, client, runtime.settings, now=NOW) == 1
    assert cli.main(["audit", "verify", "--anchors"]) == 0
    out = capsys.readouterr().out
    assert "passes through every posted head" in out and "anchors: 1 posted heads" in out
    engine = make_engine(runtime.settings.database_url)
    try:
        rewrite_chain_from(engine, changed=first)
    finally:
        engine.dispose()
    assert cli.main(["audit", "verify"]) == 0  # the hashes alone are consistent again
    capsys.readouterr()
    assert cli.main(["audit", "verify", "--anchors"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED: 1 problem; the first: The chain no longer passes through the head "
                          "posted ")
    assert "entry #2 hashes to" in out.splitlines()[0] and "The chain was rewritten" in out


def test_verify_with_anchors_needs_the_channel_and_says_when_slack_refuses(runtime, fake, capsys,
                                                                            monkeypatch):
    fake.fail_next("conversations.history", error="not_in_channel")
    assert cli.main(["audit", "verify", "--anchors"]) == 2
    assert "not_in_channel" in capsys.readouterr().err
    monkeypatch.delenv("AUDIT_CHANNEL")
    assert cli.main(["audit", "verify", "--anchors"]) == 2
    assert "AUDIT_CHANNEL must be set" in capsys.readouterr().err
