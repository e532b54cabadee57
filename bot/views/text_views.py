"""Plain-text renderings for the terminal (the Slack views are Block Kit builders)."""

from __future__ import annotations

from typing import Any

from bot.agent import CriticalMatch, Suggestion
from bot.core.settings import Settings
from bot.domain import policy
from bot.domain.processing import Outcome
from models import ActionType


def outcome_text(outcome: Outcome) -> str:
    """What the bot did with a ticket, as a person would read it in a terminal."""
    ticket, action = outcome.ticket, outcome.action
    lines = [f"Ticket #{ticket.ticket_id}: {ticket.issue_type}"]
    if action is None:
        lines.append(f"  status: {ticket.status} (no action recorded)")
        return "\n".join(lines)
    confidence = "n/a" if action.confidence_score is None else f"{action.confidence_score:.2f}"
    lines += [
        f"  action:     {action.action_type}"
        + ("" if action.autonomous else " (human triage)"),
        f"  confidence: {confidence}",
        f"  status:     {ticket.status}" + (f", team {ticket.assigned_team}" if ticket.assigned_team else ""),
        f"  why:        {action.agent_reasoning}",
        f"  action id:  {action.id}",
    ]
    steps = action.action_params.get("steps") or []
    if action.action_type == ActionType.AUTO_RESOLVE and steps:
        lines.append("  try this:")
        lines += [f"    {n}. {step}" for n, step in enumerate(steps, 1)]
    questions = action.action_params.get("questions") or []
    if questions:
        lines.append("  questions for you:")
        lines += [f"    - {q}" for q in questions]
    return "\n".join(lines)


def outcome_json(outcome: Outcome, settings: Settings) -> dict[str, Any]:
    """What the bot did with a ticket as one JSON object, for scripts (`ask --json`).

    Args:
        outcome: the decision.
        settings: the bands, to name the confidence's band.

    Returns:
        ticket, action, autonomous, confidence, band, article (the KB article id, or
        null), team, critical, reasoning.
    """
    ticket, action, answer = outcome.ticket, outcome.action, outcome.answer
    confidence = action.confidence_score if action is not None else None
    source = answer.source if answer is not None else ""
    return {
        "ticket": ticket.ticket_id,
        "action": action.action_type if action is not None else None,
        "autonomous": bool(action.autonomous) if action is not None else False,
        "confidence": confidence,
        # A THRESHOLD_EXPERIMENT arm is the ticket's AUTONOMY_THRESHOLD: the band as decided.
        "band": (policy.band(confidence, settings, threshold=action.threshold_arm)
                 if confidence is not None and action is not None else None),
        "article": source if source and not source.startswith("critical:") else None,
        "team": ticket.assigned_team,
        "critical": answer is not None and policy.is_critical(answer),
        "reasoning": action.agent_reasoning if action is not None else None,
    }


def suggestions_text(
    text: str, suggestions: list[Suggestion], critical: CriticalMatch | None, *, no_article: float
) -> str:
    """`resolvemeq kb test`: the articles most likely to answer a text, and the critical check.

    Args:
        text: the request tried.
        suggestions: the best articles with their confidence, best first.
        critical: the critical detector's finding, if any.
        no_article: the probability that no article answers it.

    Returns:
        Lines for the terminal.
    """
    lines = [f"Request: {text}"]
    if critical is not None:
        lines.append(f"  CRITICAL ({critical.kind.name}): {critical.reason}")
    else:
        lines.append("  not critical")
    for rank, suggestion in enumerate(suggestions, 1):
        article = suggestion.article
        mode = "self-service" if article.self_service else f"routed to {article.team}"
        lines.append(f"  {rank}. {suggestion.confidence:.3f}  {article.id}: {article.title} ({mode})")
    lines.append(f"     {max(0.0, no_article):.3f}  no article fits (out of scope or too vague)")
    return "\n".join(lines)
