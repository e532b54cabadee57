"""Everything a process builds once from the settings: database, agent, limits.

The Slack app, the jobs and the CLI each hold one `Runtime`; the services stay free
of globals and get what they need from it as plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.agent import Agent, build_agent
from bot.intake import open_ticket
from bot.processing import Outcome, process_ticket
from bot.ratelimit import AutonomyBudget, RollbackThrottle, make_storage
from bot.settings import Settings
from models import make_engine, make_session_factory, transaction


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    agent: Agent
    budget: AutonomyBudget
    rollback_throttle: RollbackThrottle

    @classmethod
    def from_settings(cls, settings: Settings, *, namespace: str = "resolvemeq") -> Runtime:
        """Build the database engine, the agent and the limiters for this process."""
        engine = make_engine(settings.database_url)
        storage = make_storage(settings.redis_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            agent=build_agent(settings),
            budget=AutonomyBudget(settings, storage, namespace=namespace),
            rollback_throttle=RollbackThrottle(settings, storage, namespace=namespace),
        )

    def ask(self, *, user_id: str, text: str, source: str = "cli") -> Outcome:
        """Open a ticket and decide on it at once (the CLI's path; Slack defers the decision).

        Two transactions, as in Slack: the ticket is stored before the agent runs, so a
        crash in between leaves a `new` ticket for the sweep rather than nothing.
        """
        with transaction(self.sessions) as session:
            ticket_id = open_ticket(session, user_id=user_id, text=text, source=source).ticket.ticket_id
        return self.process(ticket_id)

    def process(self, ticket_id: int) -> Outcome:
        """Decide on one stored ticket in its own transaction."""
        with transaction(self.sessions) as session:
            return process_ticket(
                session, ticket_id, agent=self.agent, budget=self.budget, settings=self.settings
            )
