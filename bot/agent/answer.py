"""What an agent is asked and what it answers, in the reference agent's wire format.

The HTTP agent receives `TicketInput.to_wire()` and its JSON reply is parsed with
`AgentAnswer.from_wire()`; the embedded knowledge-base agent builds an `AgentAnswer`
directly. The policy (bot/domain/policy.py) turns an answer into an action.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from models.ticket import CATEGORY_LENGTH, TEAM_LENGTH


class Recommendation(enum.StrEnum):
    """The `recommended_action` values of the wire format that we know how to carry out
    (the policy turns each into a `models.ActionType`, by confidence band)."""

    AUTO_RESOLVE = "auto_resolve"
    ESCALATE = "escalate"
    REQUEST_CLARIFICATION = "request_clarification"
    ASSIGN_TO_TEAM = "assign_to_team"


KNOWN_RECOMMENDATIONS = frozenset(Recommendation)

# How much of an answer is kept. The identifiers fit the columns they land in (a team
# longer than tickets.assigned_team failed the decision's flush on PostgreSQL); prose
# fits a Slack section (3,000 characters) with room for our own words around it.
LABEL_LENGTH = 50
REASONING_LENGTH = 2000
STEP_LENGTH = 500
MAX_STEPS = 20
MAX_QUESTIONS = 5

# Control characters (all but tab and newline) and lone surrogates: PostgreSQL refuses
# NUL in text and JSON, UTF-8 cannot encode a surrogate, and Slack shows neither.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: Any, limit: int, *, one_line: bool = False) -> str:
    """Text from outside (an agent, a model) made safe to store and show.

    Args:
        value: anything; it is turned into text.
        limit: the most characters kept; longer prose ends with "…".
        one_line: for a name or label: whitespace runs become one space, nothing is
            marked as cut.

    Returns:
        The text without control characters or lone surrogates, stripped, at most
        `limit` characters.
    """
    text = _UNSAFE.sub("", str(value))
    text = " ".join(text.split()) if one_line else text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] if one_line else text[: limit - 1].rstrip() + "…"


class AgentUnavailable(Exception):
    """The agent could not be reached, timed out, or its circuit is open."""


class MalformedAnswer(AgentUnavailable):
    """The agent answered, but not in the wire format we speak."""


@dataclass(frozen=True)
class TicketInput:
    """What the agent is told about a ticket."""

    ticket_id: int
    description: str
    issue_type: str = ""
    category: str = "other"
    tags: tuple[str, ...] = ()
    user_id: str = ""
    user_name: str = ""
    department: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The JSON body the reference agent service expects."""
        return {
            "ticket_id": self.ticket_id,
            "issue_type": self.issue_type,
            "description": self.description,
            "category": self.category,
            "tags": list(self.tags),
            "user": {"id": self.user_id, "name": self.user_name, "department": self.department},
        }


@dataclass(frozen=True)
class AgentAnswer:
    """An agent's analysis of one ticket."""

    confidence: float
    recommended_action: str
    reasoning: str
    category: str = "other"
    severity: str = "medium"
    complexity: str = "medium"
    suggested_team: str | None = None
    steps: tuple[str, ...] = ()
    estimated_time: str = ""
    success_probability: float = 0.0
    # Where the answer came from (a KB article id, or the remote agent); for the "Why?".
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The one boundary every agent's answer crosses (the HTTP agent's parse, the
        # knowledge base, the LLM): what is kept here fits the database and Slack, so a
        # strange answer is cut and decided on rather than failing the decision.
        # Malformed numbers are the agent's fault: MalformedAnswer, human triage.
        team = clean_text(self.suggested_team, TEAM_LENGTH, one_line=True) if self.suggested_team else ""
        steps = (clean_text(step, STEP_LENGTH) for step in self.steps)
        fixed: dict[str, Any] = {
            "confidence": _fraction(self.confidence, "confidence"),
            "success_probability": _fraction(self.success_probability, "solution.success_probability"),
            "recommended_action": clean_text(self.recommended_action, LABEL_LENGTH, one_line=True),
            "reasoning": clean_text(self.reasoning, REASONING_LENGTH),
            "category": clean_text(self.category, CATEGORY_LENGTH, one_line=True) or "other",
            "severity": clean_text(self.severity, LABEL_LENGTH, one_line=True) or "medium",
            "complexity": clean_text(self.complexity, LABEL_LENGTH, one_line=True) or "medium",
            "suggested_team": team or None,
            "steps": tuple(step for step in steps if step)[:MAX_STEPS],
            "estimated_time": clean_text(self.estimated_time, LABEL_LENGTH, one_line=True),
            "source": clean_text(self.source, LABEL_LENGTH, one_line=True),
        }
        questions = self.extra.get("questions") if isinstance(self.extra, dict) else None
        if isinstance(questions, list):
            asked = (clean_text(q, STEP_LENGTH) for q in questions if isinstance(q, str))
            fixed["extra"] = {**self.extra, "questions": [q for q in asked if q][:MAX_QUESTIONS]}
        for name, value in fixed.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def recommendation_known(self) -> bool:
        return self.recommended_action in KNOWN_RECOMMENDATIONS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form, stored on the ticket as `agent_response`."""
        return {
            "confidence": self.confidence,
            "recommended_action": self.recommended_action,
            "reasoning": self.reasoning,
            "analysis": {
                "category": self.category,
                "severity": self.severity,
                "complexity": self.complexity,
                "suggested_team": self.suggested_team,
            },
            "solution": {
                "steps": list(self.steps),
                "estimated_time": self.estimated_time,
                "success_probability": self.success_probability,
            },
            "source": self.source,
        }

    @classmethod
    def from_wire(cls, data: Any, *, source: str = "http") -> AgentAnswer:
        """Parse the reference agent's JSON reply.

        Args:
            data: the decoded JSON body.
            source: recorded as where the answer came from.

        Raises:
            MalformedAnswer: when a required field is missing or of the wrong type,
                or a probability is outside 0..1. An unknown `recommended_action` is
                not malformed: it parses, and the policy sends it to human triage.
        """
        if not isinstance(data, dict):
            raise MalformedAnswer("agent answer is not a JSON object")
        confidence = _fraction(data.get("confidence"), "confidence")
        action = data.get("recommended_action")
        if not isinstance(action, str) or not action.strip():
            raise MalformedAnswer("agent answer has no recommended_action")
        analysis = data.get("analysis") or {}
        solution = data.get("solution") or {}
        if not isinstance(analysis, dict) or not isinstance(solution, dict):
            raise MalformedAnswer("agent answer's analysis/solution are not objects")
        steps = solution.get("steps") or []
        if not isinstance(steps, list):
            raise MalformedAnswer("agent answer's solution.steps is not a list")
        success = solution.get("success_probability", 0.0)
        reasoning = data.get("reasoning") or ""
        if not isinstance(reasoning, str):
            raise MalformedAnswer("agent answer's reasoning is not text")
        team = analysis.get("suggested_team")
        return cls(
            confidence=confidence,
            recommended_action=action.strip().lower(),
            reasoning=reasoning,
            category=str(analysis.get("category") or "other").lower(),
            severity=str(analysis.get("severity") or "medium").lower(),
            complexity=str(analysis.get("complexity") or "medium").lower(),
            suggested_team=str(team) if team else None,
            steps=tuple(str(s) for s in steps),
            estimated_time=str(solution.get("estimated_time") or ""),
            success_probability=_fraction(success, "solution.success_probability"),
            source=source,
        )


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedAnswer(f"agent answer's {name} is not a number")
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise MalformedAnswer(f"agent answer's {name} is outside 0..1")
    return number


class CallRecorder(Protocol):
    """Told about every agent call, so the agent-error alert can count them."""

    def __call__(
        self, *, agent: str, ok: bool, latency_ms: float, attempts: int, error: str
    ) -> None: ...


class Agent(Protocol):
    """Anything that can analyse a ticket."""

    name: str

    def analyse(self, ticket: TicketInput, *, record: CallRecorder | None = None) -> AgentAnswer:
        """Analyse one ticket.

        Raises:
            AgentUnavailable: the agent cannot answer now (the ticket goes to human triage).
        """
        ...
