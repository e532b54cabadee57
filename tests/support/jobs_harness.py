"""Real Celery workers in subprocesses, and bulk data for the job tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select

from bot.sandbox.standin import SlackStandIn
from models import (
    ActionHistory,
    ActionType,
    Actor,
    OutboxPurpose,
    OutboxStatus,
    SlackOutbox,
    Ticket,
    TicketResolution,
    TicketSource,
    TicketStatus,
)
from tests.support.harness import ROOT

BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/4")


def seed_due_followups(engine: Engine, n: int, *, created: datetime, delay: timedelta) -> None:
    """`n` auto-resolved, unanswered tickets whose follow-up (an outbox row, as
    `bot.domain.followups.schedule` writes it) is due at created + delay."""
    state = {"status": TicketStatus.RESOLVED, "assigned_team": "Network", "awaiting_response_from": "",
             "escalated_at": None, "escalation_priority": None, "resolved_at": created.isoformat()}
    with engine.begin() as conn:
        ids = conn.execute(
            insert(Ticket).returning(Ticket.ticket_id, sort_by_parameter_order=True),
            [{"user_id": f"U{i:06d}", "issue_type": "VPN drops", "description": "VPN drops",
              "status": TicketStatus.RESOLVED, "category": "vpn", "tags": [], "agent_processed": True,
              "awaiting_response_from": "", "source": TicketSource.SLASH_COMMAND, "slack_thread_ts": "",
              "created_at": created, "updated_at": created, "resolved_at": created,
              "assigned_team": "Network"} for i in range(n)],
        ).scalars().all()
        actions = [uuid.uuid4() for _ in ids]
        conn.execute(insert(ActionHistory), [
            {"id": a, "ticket_id": t, "action_type": ActionType.AUTO_RESOLVE, "executed_at": created,
             "executed_by": Actor.AGENT, "autonomous": True, "confidence_score": 0.9,
             "agent_reasoning": "Matched KB article 'vpn'", "rollback_possible": True,
             "rolled_back": False, "rollback_reason": "", "action_params": {"steps": ["Reconnect"]},
             "before_state": {**state, "status": TicketStatus.NEW}, "after_state": state}
            for a, t in zip(actions, ids, strict=True)])
        resolutions = conn.execute(
            insert(TicketResolution).returning(TicketResolution.id, sort_by_parameter_order=True), [
            {"ticket_id": t, "action_id": a, "autonomous_action": ActionType.AUTO_RESOLVE,
             "user_feedback_text": "", "reopened": False, "reopened_reason": "",
             "followup_due_at": created + delay, "created_at": created, "updated_at": created}
            for a, t in zip(actions, ids, strict=True)]).scalars().all()
        conn.execute(insert(SlackOutbox), [
            {"purpose": OutboxPurpose.FOLLOWUP, "recipient": f"U{i:06d}", "resolution_id": r,
             "ticket_id": t, "text": "", "status": OutboxStatus.PENDING, "attempts": 0,
             "next_attempt_at": created + delay, "created_at": created, "last_error": ""}
            for i, (r, t) in enumerate(zip(resolutions, ids, strict=True))])


def sent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(
            select(TicketResolution.id).where(TicketResolution.followup_sent_at.is_not(None))
        ).all())


class Worker:
    """`resolvemeq worker` in its own process group."""

    def __init__(self, *, database_url: str, slack: SlackStandIn, name: str, **env: str):
        self.name = name
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))},
            "DATABASE_URL": database_url, "REDIS_URL": BROKER_URL,
            "SLACK_API_URL": slack.base_url, "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": "unused-here", **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.platform.cli", "worker", "--pool=threads", "--concurrency=2",
             f"--hostname={self.name}@%h", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no chance to record anything."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
