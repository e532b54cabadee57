"""Why a ticket went to people instead of the bot acting as the agent advised.

A short, stable category for monitoring (a Sentry tag, the key of the one-a-minute
report): the reason people read (`action_params["reason"]`) is a sentence that may
carry an agent's own words. Some causes are people's choice (autonomy paused, shadow
mode, an action type AUTONOMOUS_ACTIONS leaves out): they are recorded like the
others and never reported as a problem.
"""

from __future__ import annotations

import enum

from bot.domain import processing
from bot.domain.policy import CAUSE_PARAM
from bot.domain.processing import Outcome

__all__ = ["CAUSE_PARAM", "TriageCause", "cause_of"]


class TriageCause(enum.StrEnum):
    """Why the bot did not act alone on a ticket the agent had an opinion on."""

    AGENT_UNAVAILABLE = "agent_unavailable"
    AGENT_ANSWER_UNUSABLE = "agent_answer_unusable"
    UNKNOWN_ACTION = "unknown_action"
    CAP_REACHED = "cap_reached"
    LIMITER_DOWN = "limiter_down"
    OTHER = "other"
    AUTONOMY_PAUSED = "autonomy_paused"
    SHADOW_MODE = "shadow_mode"
    # The requester's replies left the bot unsure after CLARIFICATION_ROUNDS, or they did
    # not reply within CLARIFICATION_TIMEOUT.
    CLARIFICATION_ROUNDS = processing.ROUNDS_CAUSE
    CLARIFICATION_TIMEOUT = processing.NO_REPLY_CAUSE
    # AUTONOMOUS_ACTIONS does not let this action type act alone.
    NOT_AUTONOMOUS = "action_not_autonomous"

    @property
    def deliberate(self) -> bool:
        """People chose this (or the settings did): not a failure to report."""
        return self in (TriageCause.AUTONOMY_PAUSED, TriageCause.SHADOW_MODE, TriageCause.NOT_AUTONOMOUS,
                        TriageCause.CLARIFICATION_ROUNDS, TriageCause.CLARIFICATION_TIMEOUT)


_VALUES = frozenset(cause.value for cause in TriageCause)


def cause_of(outcome: Outcome) -> TriageCause | None:
    """The cause of a triaged decision, or None when the bot followed the policy.

    Args:
        outcome: a decision just made (not one made before).

    Returns:
        The cause the decision named (`CAUSE_PARAM`), else the one its shape shows:
        no answer (the agent down, or its answer unusable); a suggestion kept (the bot
        would have acted: the caps or their store said no); an answer with an action
        we do not know.
    """
    action = outcome.action
    if outcome.triage_reason is None or action is None:
        return None
    params = action.action_params or {}
    named = params.get(CAUSE_PARAM)
    if isinstance(named, str) and named in _VALUES:
        return TriageCause(named)
    reason = outcome.triage_reason
    if outcome.answer is None:
        if "could not be used" in reason:
            return TriageCause.AGENT_ANSWER_UNUSABLE
        return TriageCause.AGENT_UNAVAILABLE
    if params.get("suggestion") is not None:
        return TriageCause.LIMITER_DOWN if "limiter" in reason else TriageCause.CAP_REACHED
    if not outcome.answer.recommendation_known:
        return TriageCause.UNKNOWN_ACTION
    return TriageCause.OTHER
