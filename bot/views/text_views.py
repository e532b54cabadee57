"""Plain-text renderings for the terminal (the Slack views are Block Kit builders)."""

from __future__ import annotations

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
