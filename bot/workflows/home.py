"""The App Home tab: the viewer's open tickets (read at every open), and the last 30
days' figures, counted at most every 30 seconds.

Every open of the tab used to rerun the 30-day aggregate (seconds over a large history,
bench/queries.py); the figures are the same for everyone, so one count serves every
open for `HOME_FIGURES_TTL` in this process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot import views
from bot.core import clock
from bot.delivery.slack_client import safe_call
from bot.domain import analytics, autonomy, experiment_stats, experiments, requester, sla
from bot.domain.analytics import ResolutionStats
from bot.domain.experiment_stats import ExperimentResults
from models import read_transaction

HOME_DAYS = 30
HOME_FIGURES_TTL = timedelta(seconds=30)


@dataclass(frozen=True)
class Counted:
    """One count of the tab's figures: the stats, the service levels per team and
    priority, and the running THRESHOLD_EXPERIMENT's results (None without one)."""

    at: datetime
    stats: ResolutionStats
    levels: tuple[sla.SlaRow, ...]
    experiment: ExperimentResults | None


class HomeFigures:
    """The App Home's figures, counted once per `ttl` in this process.

    Args:
        sessions: where to count them.
        ttl: how long one count is shown.
    """

    def __init__(self, sessions: sessionmaker[Session], *, ttl: timedelta = HOME_FIGURES_TTL):
        self._sessions, self._ttl = sessions, ttl
        self._counted: Counted | None = None
        # Held while counting: opens arriving meanwhile wait for that count, not their own.
        self._lock = threading.Lock()

    def get(self) -> ResolutionStats:
        """The figures, counted now if the last count is older than the ttl.

        Raises:
            SQLAlchemyError: the database failed (nothing is cached).
        """
        return self.counted().stats

    def counted(self) -> Counted:
        """The figures, the service levels and the running experiment's results,
        counted together now if the last count is older than the ttl.

        Raises:
            SQLAlchemyError: the database failed (nothing is cached).
        """
        with self._lock:
            now = clock.now()
            if self._counted is not None and now - self._counted.at < self._ttl:
                return self._counted
            # Read-only: on SQLite it never waits for (or blocks) a writer.
            with read_transaction(self._sessions) as session:
                stats = analytics.resolution_stats(session, days=HOME_DAYS, now=now)
                levels = sla.sla_stats(session, since=stats.since)
                running = experiments.running(session)
                trial = experiment_stats.results(session, running) if running is not None else None
            self._counted = Counted(at=now, stats=stats, levels=levels, experiment=trial)
            return self._counted

    def invalidate(self) -> None:
        """Count again at the next open: something the figures show changed here."""
        with self._lock:
            self._counted = None

    def open_tickets_of(self, user_id: str) -> requester.OpenTickets:
        """The viewer's open tickets, read now (they are the viewer's own, never cached).

        Raises:
            SQLAlchemyError: the database failed.
        """
        with read_transaction(self._sessions) as session:
            return _detached(session, requester.open_tickets_of(session, user_id))

    def viewer(self, user_id: str) -> tuple[requester.OpenTickets, autonomy.Switch]:
        """What the tab shows this viewer besides the figures, read now in one
        transaction: their open tickets and the autonomy switch (neither is cached).

        Raises:
            SQLAlchemyError: the database failed.
        """
        with read_transaction(self._sessions) as session:
            return _detached(session, requester.open_tickets_of(session, user_id)), autonomy.current(session)


def _detached(session: Session, mine: requester.OpenTickets) -> requester.OpenTickets:
    # Detached while loaded: the read transaction's rollback would expire them.
    for ticket in mine.tickets:
        session.expunge(ticket)
    return mine


def publish_home(client: WebClient, user_id: str, *, is_admin: bool, figures: HomeFigures,
                 refresh: bool = False) -> None:
    """Render the App Home tab for `user_id`: the autonomy mode (read now, never cached:
    one row), their open tickets and the last 30 days' figures.

    Args:
        client: the Web API client.
        user_id: whose tab.
        is_admin: whether to show the admin hints (and who set the autonomy mode, why).
        figures: the figures' cache.
        refresh: count the figures again (after the viewer changed a ticket).
    """
    if refresh:
        figures.invalidate()
    mine, switch = figures.viewer(user_id)
    counted = figures.counted()
    safe_call(client, "views.publish", user_id=user_id,
              view=views.home_view(counted.stats, is_admin=is_admin, mine=mine, autonomy=switch,
                                   sla=counted.levels, experiment=counted.experiment))
