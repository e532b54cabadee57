"""An agent whose answers the test chooses (the real ones are tested on their own)."""

from __future__ import annotations

from bot.agent.answer import AgentAnswer, AgentUnavailable, TicketInput


def vpn_answer(confidence: float = 0.92, action: str = "auto_resolve", **kwargs) -> AgentAnswer:
    fields = {
        "confidence": confidence,
        "recommended_action": action,
        "reasoning": "Matched KB article 'vpn' on 'vpn', 'disconnect'.",
        "category": "vpn",
        "severity": "low",
        "suggested_team": "Network",
        "steps": ("Quit the VPN client", "Reconnect on the office profile"),
        "estimated_time": "5 minutes",
        "success_probability": 0.9,
        "source": "vpn",
    }
    fields.update(kwargs)
    return AgentAnswer(**fields)


class ScriptedAgent:
    name = "scripted"

    def __init__(self, answer: AgentAnswer | None = None, *, fail: str | None = None):
        self.answer = answer or vpn_answer()
        self.fail = fail
        self.seen: list[TicketInput] = []

    def analyse(self, ticket: TicketInput, *, record=None) -> AgentAnswer:
        self.seen.append(ticket)
        if record:
            record(agent=self.name, ok=self.fail is None, latency_ms=1.0, attempts=1,
                   error=self.fail or "")
        if self.fail:
            raise AgentUnavailable(self.fail)
        return self.answer


class AnswersInTurn:
    """An agent answering with `answers` in turn (the last one again once they run out),
    remembering what it saw: a conversation's successive decisions."""

    name = "scripted"

    def __init__(self, *answers: AgentAnswer) -> None:
        self.answers = list(answers)
        self.seen: list[TicketInput] = []

    def analyse(self, ticket: TicketInput, *, record=None) -> AgentAnswer:
        self.seen.append(ticket)
        if record:
            record(agent=self.name, ok=True, latency_ms=1.0, attempts=1, error="")
        return self.answers[min(len(self.seen), len(self.answers)) - 1]
