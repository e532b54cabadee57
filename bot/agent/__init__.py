"""The agent: who decides what a ticket needs.

`build_agent(settings)` picks the HTTP agent when AGENT_URL is set (an existing
reference agent service plugs in unchanged), the LLM agent when LLM_BASE_URL is set
(any OpenAI-compatible endpoint), else the embedded knowledge-base agent over the
shipped articles and KB_DIR's.

May import `bot.core` and `models` only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import SecretStr

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
from bot.agent.grounding import KnowledgeBase
from bot.agent.http import HttpAgent
from bot.agent.kb import KnowledgeBaseAgent, Suggestion
from bot.agent.llm import LlmAgent, RefusedAnswer
from bot.agent.routing import TEAM_BY_CATEGORY
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
    "LlmAgent",
    "MalformedAnswer",
    "RefusedAnswer",
    "Suggestion",
    "TicketInput",
    "build_agent",
    "knowledge_base",
]


def build_agent(settings: Settings) -> Agent:
    """The agent this process uses.

    Args:
        settings: AGENT_URL or LLM_BASE_URL (never both: settings refuse it), and the
            timeout, retries and breaker settings they share.

    Returns:
        An `HttpAgent` when AGENT_URL is set, an `LlmAgent` when LLM_BASE_URL is set
        (each with its own circuit breaker), else a `KnowledgeBaseAgent` over the
        shipped articles and KB_DIR's.

    Raises:
        KnowledgeBaseError: an article is broken (every problem, one line each).
    """
    breaker = CircuitBreaker(
        failure_threshold=settings.agent_breaker_failures,
        reset_timeout=settings.agent_breaker_reset,
    )
    if settings.llm_base_url:
        return LlmAgent(
            str(settings.llm_base_url),
            model=settings.llm_model or "",
            api_key=_secret(settings.llm_api_key),
            timeout=settings.agent_timeout,
            retries=settings.agent_retries,
            breaker=breaker,
            teams=sorted({settings.default_team, *TEAM_BY_CATEGORY.values()}),
            secrets=_known_secrets(settings),
            knowledge=KnowledgeBase(knowledge_base(settings)),
        )
    if settings.agent_url:
        return HttpAgent(
            str(settings.agent_url),
            timeout=settings.agent_timeout,
            retries=settings.agent_retries,
            breaker=breaker,
        )
    return knowledge_base(settings)


def _known_secrets(settings: Settings) -> list[str]:
    """Every secret value this process holds, so none is ever quoted to a model."""
    values = [_secret(s) for s in (settings.slack_bot_token, settings.slack_signing_secret,
                                   settings.slack_app_token, settings.llm_api_key,
                                   settings.sentry_dsn)]
    for url in (settings.database_url, settings.redis_url):
        values.append(urlsplit(url).password if url else None)
    return [v for v in values if v]


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def knowledge_base(settings: Settings) -> KnowledgeBaseAgent:
    """The embedded agent over KB_SHIPPED's and KB_DIR's articles (fitted once per process).

    Raises:
        KnowledgeBaseError: an article is broken (every problem, one line each).
    """
    return KnowledgeBaseAgent(load_library(settings.kb_dir, shipped=settings.kb_shipped))
