"""From an agent's answer to an action, by confidence band.

Bands (defaults 0.8 / 0.6 / 0.3, from the environment):
- high (>= AUTONOMY_THRESHOLD): follow the agent. Auto-resolve also needs the
  solution's success probability >= AUTO_RESOLVE_MIN_SUCCESS; otherwise the answer
  is suggested to the owning team.
- medium (>= MEDIUM_CONFIDENCE_THRESHOLD): never auto-resolve; suggest the answer and
  route the ticket to the team.
- low (>= LOW_CONFIDENCE_THRESHOLD): ask the requester for the missing detail.
- below low: the agent's guess is not worth showing; ask with general questions.
Critical tickets (security, outage, data loss) are escalated in every band: a human
must see them, and escalating is always safe.

An action the agent names that we do not know goes to human triage, as does any
ticket the bot may not act on alone (caps, limiter down, agent down).
"""

from __future__ import annotations

import enum

from bot.agent.answer import AgentAnswer, Recommendation
from bot.core.settings import Settings
from bot.domain.actions import PlannedAction
from models import ActionType, Actor, EscalationPriority

# Where a triage that knows its cause names it in the action's params (a TriageCause
# value, bot.domain.triage_causes): the autonomy switch and AUTONOMOUS_ACTIONS do, as
# nothing else tells a deliberate triage from one the caps forced.
CAUSE_PARAM = "triage_cause"

CRITICAL_CATEGORIES = frozenset({"security", "outage", "data_loss"})

GENERAL_QUESTIONS = (
    "What were you trying to do when it went wrong?",
    "What exactly do you see (an error message, a screenshot)?",
    "Since when, and does it affect anyone else?",
)
_TOPIC_QUESTIONS = (
    "Which device, app or service is it about?",
    "What have you already tried?",
)


class Band(enum.StrEnum):
    """The confidence bands, kept in an action's params as `band`."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    VERY_LOW = "very_low"


def is_critical(answer: AgentAnswer) -> bool:
    """Whether the ticket must reach a human whatever the confidence."""
    return answer.severity == "critical" or answer.category in CRITICAL_CATEGORIES


def band(confidence: float, settings: Settings, *, threshold: float | None = None) -> Band:
    """The confidence band `confidence` falls in, by the thresholds in `settings`
    (`threshold` in place of AUTONOMY_THRESHOLD: a THRESHOLD_EXPERIMENT arm)."""
    if confidence >= (settings.autonomy_threshold if threshold is None else threshold):
        return Band.HIGH
    if confidence >= settings.medium_confidence_threshold:
        return Band.MEDIUM
    if confidence >= settings.low_confidence_threshold:
        return Band.LOW
    return Band.VERY_LOW


def plan(answer: AgentAnswer, settings: Settings, *, threshold: float | None = None) -> PlannedAction:
    """Decide what the bot does with a ticket the agent has analysed.

    Args:
        answer: the agent's analysis.
        settings: the thresholds and the default team.
        threshold: the ticket's THRESHOLD_EXPERIMENT arm, used as AUTONOMY_THRESHOLD.

    Returns:
        The planned action; `autonomous` is False only for human triage.
    """
    level = band(answer.confidence, settings, threshold=threshold)
    team = answer.suggested_team or settings.default_team
    params = {
        "team": team,
        "steps": list(answer.steps),
        "estimated_time": answer.estimated_time,
        "category": answer.category,
        "severity": answer.severity,
        "source": answer.source,
        "band": level,
    }

    def act(action_type: ActionType, why: str, **extra) -> PlannedAction:
        return PlannedAction(
            action_type=action_type,
            confidence=answer.confidence,
            reasoning=_explain(answer, level, why),
            params={**params, **extra},
        )

    if not answer.recommendation_known:
        return triage(
            f"the agent recommended {answer.recommended_action!r}, which the bot does not know",
            settings=settings,
            answer=answer,
        )
    if is_critical(answer):
        return act(ActionType.ESCALATE, "critical issue: a human must see it now",
                   priority=EscalationPriority.CRITICAL)

    wanted = answer.recommended_action
    if level == Band.HIGH:
        if wanted == Recommendation.AUTO_RESOLVE:
            if answer.success_probability >= settings.auto_resolve_min_success:
                return act(ActionType.AUTO_RESOLVE, "confident, and the fix usually works")
            return act(
                ActionType.ASSIGN_TO_TEAM,
                f"confident, but the fix works only {answer.success_probability:.0%} of "
                f"the time: suggesting it to {team}",
                suggested_answer=True,
            )
        if wanted == Recommendation.ESCALATE:
            return act(ActionType.ESCALATE, "the agent asked for escalation",
                       priority=EscalationPriority.HIGH)
        if wanted == Recommendation.ASSIGN_TO_TEAM:
            return act(ActionType.ASSIGN_TO_TEAM, f"routed to {team}")
        return act(ActionType.REQUEST_CLARIFICATION, "the agent needs more detail",
                   questions=_questions(answer))
    if level == Band.MEDIUM:
        if wanted == Recommendation.ESCALATE:
            return act(ActionType.ESCALATE, "the agent asked for escalation",
                       priority=EscalationPriority.MEDIUM)
        if wanted == Recommendation.REQUEST_CLARIFICATION:
            return act(ActionType.REQUEST_CLARIFICATION, "the agent needs more detail",
                       questions=_questions(answer))
        return act(
            ActionType.ASSIGN_TO_TEAM,
            f"not sure enough to resolve alone: suggesting the answer to {team}",
            suggested_answer=bool(answer.steps),
        )
    if level == Band.LOW:
        return act(ActionType.REQUEST_CLARIFICATION, "not sure what this is about",
                   questions=list(_TOPIC_QUESTIONS))
    return act(ActionType.REQUEST_CLARIFICATION, "no good match", questions=list(GENERAL_QUESTIONS))


def triage(
    reason: str,
    *,
    settings: Settings,
    answer: AgentAnswer | None = None,
    suggestion: PlannedAction | None = None,
    cause: str | None = None,
) -> PlannedAction:
    """Route a ticket to the human triage queue, keeping the bot's idea as a suggestion.

    Args:
        reason: why the bot is not acting alone, shown to people.
        settings: for the default team.
        answer: the agent's analysis, when there is one.
        suggestion: what the bot would have done, kept for the humans.
        cause: the TriageCause to record (`CAUSE_PARAM`), when the caller knows it.
    """
    critical = answer is not None and is_critical(answer)
    params = {
        "team": settings.default_team,
        "priority": EscalationPriority.CRITICAL if critical else EscalationPriority.MEDIUM,
        "triage": True,
        "reason": reason,
    }
    if suggestion is not None:
        params["suggestion"] = suggestion.to_dict()
    if cause is not None:
        params[CAUSE_PARAM] = cause
    return PlannedAction(
        action_type=ActionType.ESCALATE,
        confidence=answer.confidence if answer else None,
        reasoning=f"Sent to human triage: {reason}."
        + (f" Agent: {answer.reasoning}" if answer and answer.reasoning else ""),
        params=params,
        autonomous=False,
        executed_by=Actor.SYSTEM,
    )


def _questions(answer: AgentAnswer) -> list[str]:
    """The agent's own questions when it asked some (the LLM agent does), else ours."""
    asked = answer.extra.get("questions") if isinstance(answer.extra, dict) else None
    if isinstance(asked, list) and asked and all(isinstance(q, str) and q for q in asked):
        return list(asked)
    return list(_TOPIC_QUESTIONS)


def _explain(answer: AgentAnswer, level: str, why: str) -> str:
    note = f"Confidence {answer.confidence:.2f} ({level.replace('_', ' ')} band): {why}."
    return f"{answer.reasoning} {note}".strip()
