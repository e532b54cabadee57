"""The agent: who decides what a ticket needs.

`build_agent(settings)` picks the HTTP agent when AGENT_URL is set (an existing
reference agent service plugs in unchanged), else the embedded knowledge-base agent over
the shipped articles and KB_DIR's.

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
from bot.agent.articles import KnowledgeBaseError, load_library
from bot.agent.breaker import CircuitBreaker
from bot.agent.critical import CriticalDetector, CriticalMatch
from bot.agent.http import HttpAgent
from bot.agent.kb import KnowledgeBaseAgent, Suggestion
from bot.core.settings import Settings

__all__ = [
    "Agent",
    "AgentAnswer",
    "AgentUnavailable",
    "CallRecorder",
    "CircuitBreaker",
    "CriticalDetector",
    "CriticalMatch",
    "HttpAgent",
    "KnowledgeBaseAgent",
    "KnowledgeBaseError",
    "MalformedAnswer",
    "Suggestion",
    "TicketInput",
    "build_agent",
    "knowledge_base",
]


def build_agent(settings: Settings) -> Agent:
    """The agent this process uses.

    Args:
        settings: AGENT_URL and its timeout, retries and breaker settings.

    Returns:
        An `HttpAgent` (with its own circuit breaker) when AGENT_URL is set, else a
        `KnowledgeBaseAgent` over the shipped articles and KB_DIR's.

    Raises:
        KnowledgeBaseError: an article is broken (every problem, one line each).
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
    return knowledge_base(settings)


def knowledge_base(settings: Settings) -> KnowledgeBaseAgent:
    """The embedded agent over KB_SHIPPED's and KB_DIR's articles (fitted once per process).

    Raises:
        KnowledgeBaseError: an article is broken (every problem, one line each).
    """
    return KnowledgeBaseAgent(load_library(settings.kb_dir, shipped=settings.kb_shipped))
