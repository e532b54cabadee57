"""Everything a process builds once from the settings: database, agent, limits.

The Slack app, the jobs and the CLI each hold one `Runtime`; the services stay free
of globals and get what they need from it as plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.agent import Agent, build_agent
from bot.core import clock
from bot.core.settings import Settings
from bot.delivery.background import READ_WORKERS
from bot.delivery.message_locks import MessageLocks
from bot.domain import audit_chain
from bot.domain.intake import open_ticket
from bot.domain.processing import Outcome
from bot.domain.ratelimit import AutonomyBudget, RollbackThrottle, TicketLimit, make_storage
from bot.workflows.decision import decide_ticket
from models import TicketSource, make_engine, make_session_factory, transaction

if TYPE_CHECKING:
    from bot.workflows.dispatch import Decisions
    from bot.workflows.redraws import Redraws


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    agent: Agent
    budget: AutonomyBudget
    rollback_throttle: RollbackThrottle
    message_locks: MessageLocks = field(default_factory=MessageLocks)
    # The per-person ticket limit on Slack's intake (None: none; the CLI never has one).
    ticket_limit: TicketLimit | None = None
    # Where this process hands decisions off (bot.workflows.dispatch); set by the Slack
    # app and the worker, None where nothing is handed off (the CLI's `ask`).
    decisions: Decisions | None = None
    # Where this process hands the work after a click off (bot.workflows.redraws): the
    # workers or this process's pool; set by the Slack app, None elsewhere.
    redraws: Redraws | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, namespace: str = "resolvemeq") -> Runtime:
        """Build the database engine, the agent and the limiters for this process."""
        # The sandbox's "skip ahead" (SANDBOX_CLOCK_FILE); unset, the clock is real time.
        clock.use_offset_file(settings.sandbox_clock_file)
        engine = make_engine(settings.database_url, **_pool(settings))
        storage = make_storage(settings.redis_url)
        sessions = make_session_factory(engine)
        # Every action and audit row this process writes joins the audit chain.
        audit_chain.install(sessions, key=audit_chain.signing_key(settings.audit_signing_key))
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            agent=build_agent(settings),
            budget=AutonomyBudget(settings, storage, namespace=namespace),
            rollback_throttle=RollbackThrottle(settings, storage, namespace=namespace),
            message_locks=MessageLocks(settings.redis_url, namespace=namespace),
            ticket_limit=TicketLimit(settings, storage, namespace=namespace),
        )

    def ask(self, *, user_id: str, text: str, source: str = TicketSource.CLI) -> Outcome:
        """Open a ticket and decide on it at once (the CLI's path; Slack defers the decision).

        Two transactions, as in Slack: the ticket is stored before the agent runs, so a
        crash in between leaves a `new` ticket for the sweep rather than nothing.
        """
        with transaction(self.sessions) as session:
            ticket_id = open_ticket(session, user_id=user_id, text=text, source=source).ticket.ticket_id
        return self.process(ticket_id)

    def process(self, ticket_id: int) -> Outcome:
        """Decide on one stored ticket (claim, agent, act: bot.workflows.decision)."""
        return decide_ticket(self.sessions, ticket_id, agent=self.agent, budget=self.budget,
                             settings=self.settings).outcome


def _pool(settings: Settings) -> dict:
    """Connection pool sized to the threads that use it (PostgreSQL only).

    SQLAlchemy's default keeps 5 connections and opens 10 more on demand, closing each
    after use: under load every request past the fifth paid for a new PostgreSQL backend
    (bench/ack_path.py counted 223 new sessions in 20 s at 100 requests/s), and a
    request that found all 15 busy waited up to 30 s, far past Slack's 3. Connections
    open lazily, so the size is a ceiling, not a cost; a request that still finds none
    free fails within 2 s and is told so.
    """
    if not settings.database_url.startswith("postgresql"):
        return {}
    return {
        "pool_size": settings.server_threads + settings.slack_background_workers + READ_WORKERS + 2,
        "max_overflow": 5,
        "pool_timeout": 2,
    }
