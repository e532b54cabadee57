"""The agent: who decides what a ticket needs.

`build_agent(settings)` picks the HTTP agent when AGENT_URL is set (an existing
reference agent service plugs in unchanged), else the embedded knowledge-base agent.

May import `bot.core` and `models` only.
"""

from __future__ import annotations

from bot.agent.answer import (
    Agent,
    AgentAnswer,
    AgentUnavailable,
    CallRecorder,
    MalformedAnswer,
    TicketInput,
)
from bot.agent.breaker import CircuitBreaker
from bot.agent.http import HttpAgent
from bot.agent.kb import KnowledgeBaseAgent
from bot.core.settings import Settings

__all__ = [
    "Agent",
    "AgentAnswer",
    "AgentUnavailable",
    "CallRecorder",
    "CircuitBreaker",
    "HttpAgent",
    "KnowledgeBaseAgent",
    "MalformedAnswer",
    "TicketInput",
    "build_agent",
]


def build_agent(settings: Settings) -> Agent:
    """The agent this process uses.

    Args:
        settings: AGENT_URL and its timeout, retries and breaker settings.

    Returns:
        An `HttpAgent` (with its own circuit breaker) when AGENT_URL is set, else a
        `KnowledgeBaseAgent` over the shipped articles.
    """
    if settings.agent_url:
        breaker = CircuitBreaker(
            failure_threshold=settings.agent_breaker_failures,
            reset_timeout=settings.agent_breaker_reset,
        )
        return HttpAgent(
            str(settings.agent_url),
            timeout=settings.agent_timeout,
            retries=settings.agent_retries,
            breaker=breaker,
        )
    return KnowledgeBaseAgent()
