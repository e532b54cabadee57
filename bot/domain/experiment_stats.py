"""An experiment's results per arm, and the test on its reopen rates.

Kept apart from bot.domain.success (and one function, `arm_figures`, so a daily rollup
can take it over as it is): the figures of one experiment, from the decisions that
recorded it (`action_history.experiment_id`), whatever window /resolution-stats shows.

Per arm:
- tickets: the tickets decided on in the arm;
- decisions and autonomous acts (the autonomy rate is autonomous / decisions);
- each ticket counted once by the outcome of the bot's actions on it (as
  bot.domain.success defines an action's outcome), the worst winning: rolled back,
  else reopened, else confirmed, else unanswered. The ticket is the unit the arms
  were assigned by, so the test below compares independent observations;
- CSAT: the share of 4 and 5 star ratings of the bot's resolutions in the arm
  (rolled-back ones aside).

The test: statsmodels' two-proportion z-test on the reopen rate (reopened / answered
tickets, answered = confirmed + reopened) of each arm against the first arm. Below
MIN_ANSWERED answered tickets in either arm there is no verdict yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from bot.domain import stats_facts
from bot.domain.experiments import Experiment
from bot.domain.stats_facts import CONFIRMED, CSAT_MIN_STARS, REOPENED, ROLLED_BACK
from bot.domain.success import Csat
from models import ActionHistory, ActionType, TicketResolution

# Answered tickets each arm needs before the test says anything.
MIN_ANSWERED = 30
# The significance level: p below it is a difference shown.
ALPHA = 0.05


@dataclass(frozen=True)
class ArmFigures:
    """One arm's figures."""

    threshold: float
    tickets: int = 0
    decisions: int = 0
    autonomous: int = 0
    confirmed: int = 0
    reopened: int = 0
    rolled_back: int = 0
    unanswered: int = 0
    csat: Csat = Csat()

    @property
    def autonomy_rate(self) -> float | None:
        """Autonomous acts / decisions; None before any decision."""
        return None if not self.decisions else self.autonomous / self.decisions

    @property
    def answered(self) -> int:
        """Tickets whose requester said Yes or No (rolled-back ones aside)."""
        return self.confirmed + self.reopened

    @property
    def reopen_rate(self) -> float | None:
        """Reopened / answered tickets; None before any answer."""
        return None if not self.answered else self.reopened / self.answered


class Verdict:
    """What a comparison shows (the words are bot.views.experiment's)."""

    NOT_ENOUGH = "not_enough"
    NO_DIFFERENCE = "no_difference"
    DIFFERENT = "different"


@dataclass(frozen=True)
class Comparison:
    """One arm's reopen rate against the first arm's."""

    baseline: ArmFigures
    arm: ArmFigures
    verdict: str  # a Verdict
    # The test's p-value; None when there was no test (too little data, or no spread:
    # no reopens or nothing but reopens in both arms).
    p_value: float | None = None

    @property
    def fewer(self) -> ArmFigures | None:
        """The arm that reopens less, when the difference is shown."""
        if self.verdict != Verdict.DIFFERENT:
            return None
        return self.arm if (self.arm.reopen_rate or 0) < (self.baseline.reopen_rate or 0) else self.baseline


@dataclass(frozen=True)
class ExperimentResults:
    """An experiment, its arms' figures (in the order set) and the comparisons."""

    experiment: Experiment
    arms: tuple[ArmFigures, ...]
    comparisons: tuple[Comparison, ...]
    min_answered: int = MIN_ANSWERED


def results(session: Session, experiment: Experiment) -> ExperimentResults:
    """The figures and the verdict of `experiment` (running or stopped)."""
    arms = arm_figures(session, experiment)
    first, rest = arms[0], arms[1:]
    return ExperimentResults(experiment, arms, tuple(compare(first, arm) for arm in rest))


def arm_figures(session: Session, experiment: Experiment) -> tuple[ArmFigures, ...]:
    """Per arm, in the order set (an arm without decisions yet has zeros).

    Two statements: the outcomes (per ticket, then per arm, grouped in the database)
    and CSAT per arm.
    """
    # The outcome as the stats define it (bot.domain.stats_facts), over the actions
    # since the experiment started.
    outcome, joined = stats_facts.outcome_of([(experiment.started_at, None)])
    per_ticket = (
        joined(select(
            ActionHistory.threshold_arm.label("arm"),
            func.count().label("decisions"),
            func.count(case((ActionHistory.autonomous.is_(True), 1))).label("autonomous"),
            func.max(case((outcome == ROLLED_BACK, 1), else_=0)).label("rolled_back"),
            func.max(case((outcome == REOPENED, 1), else_=0)).label("reopened"),
            func.max(case((outcome == CONFIRMED, 1), else_=0)).label("confirmed"),
        ))
        .where(ActionHistory.experiment_id == experiment.id)  # (agent actions: `joined`)
        .group_by(ActionHistory.threshold_arm, ActionHistory.ticket_id)
        .subquery("per_ticket")
    )
    t = per_ticket.c
    kept = t.rolled_back == 0
    rows = session.execute(
        select(
            t.arm,
            func.count().label("tickets"),
            func.sum(t.decisions).label("decisions"),
            func.sum(t.autonomous).label("autonomous"),
            func.count(case((t.rolled_back == 1, 1))).label("rolled_back"),
            func.count(case((and_(kept, t.reopened == 1), 1))).label("reopened"),
            func.count(case((and_(kept, t.reopened == 0, t.confirmed == 1), 1))).label("confirmed"),
        ).group_by(t.arm)
    ).all()
    counted = {float(row.arm): row for row in rows}
    ratings = _csat(session, experiment)
    figures = []
    for threshold in experiment.arms:
        row = counted.get(threshold)
        if row is None:
            figures.append(ArmFigures(threshold, csat=ratings.get(threshold, Csat())))
            continue
        tickets, rolled, reopened, confirmed = row.tickets, row.rolled_back, row.reopened, row.confirmed
        figures.append(ArmFigures(
            threshold, tickets=tickets, decisions=int(row.decisions or 0),
            autonomous=int(row.autonomous or 0), confirmed=confirmed, reopened=reopened,
            rolled_back=rolled, unanswered=tickets - rolled - reopened - confirmed,
            csat=ratings.get(threshold, Csat()),
        ))
    return tuple(figures)


def _csat(session: Session, experiment: Experiment) -> dict[float, Csat]:
    """CSAT of the bot's resolutions per arm: ratings on resolutions whose action ran in
    the experiment, rolled-back ones aside. From the experiment's actions (its index) to
    their ticket's one resolution, so other resolutions are never read."""
    score = TicketResolution.satisfaction_score
    rows = session.execute(
        select(
            ActionHistory.threshold_arm,
            func.count(case((score >= CSAT_MIN_STARS, 1))).label("satisfied"),
            func.count(score).label("ratings"),
        )
        .select_from(ActionHistory)
        .join(TicketResolution, and_(TicketResolution.ticket_id == ActionHistory.ticket_id,
                                     TicketResolution.action_id == ActionHistory.id))
        .where(ActionHistory.experiment_id == experiment.id,
               ActionHistory.action_type == ActionType.AUTO_RESOLVE,
               ActionHistory.rolled_back.is_(False))
        .group_by(ActionHistory.threshold_arm)
    ).all()
    return {float(row.threshold_arm): Csat(satisfied=row.satisfied, ratings=row.ratings) for row in rows}


def compare(baseline: ArmFigures, arm: ArmFigures, *, min_answered: int = MIN_ANSWERED,
            alpha: float = ALPHA) -> Comparison:
    """The two-proportion z-test (statsmodels) on the reopen rates of two arms.

    Returns:
        NOT_ENOUGH below `min_answered` answered tickets in either arm; NO_DIFFERENCE
        when p >= `alpha` (or both arms have the same rate with no spread: all Yes or
        all No); else DIFFERENT, with the p-value.
    """
    if baseline.answered < min_answered or arm.answered < min_answered:
        return Comparison(baseline, arm, Verdict.NOT_ENOUGH)
    reopened = baseline.reopened + arm.reopened
    if reopened in (0, baseline.answered + arm.answered):
        # No spread: the pooled variance is 0 and the test is undefined; the rates are equal.
        return Comparison(baseline, arm, Verdict.NO_DIFFERENCE)
    # Imported when used: statsmodels pulls in pandas and scipy (a second of startup).
    from statsmodels.stats.proportion import proportions_ztest

    _, p_value = proportions_ztest([arm.reopened, baseline.reopened], [arm.answered, baseline.answered])
    p = float(p_value)
    if math.isnan(p) or p >= alpha:
        return Comparison(baseline, arm, Verdict.NO_DIFFERENCE, None if math.isnan(p) else p)
    return Comparison(baseline, arm, Verdict.DIFFERENT, p)
