"""The LLM agent: any OpenAI-compatible Chat Completions endpoint decides.

OpenAI, Azure OpenAI's v1 endpoint, Ollama and vLLM all speak Chat Completions; the
official `openai` client talks to each of them through `LLM_BASE_URL`. The critical
check of the embedded knowledge base runs first: a security incident, data loss or
an outage is escalated without asking the model at all. Otherwise the model gets the
request, the best-matching articles and the rules (bot/agent/llm_prompt.py), and must
answer in a strict JSON schema; anything else (not JSON, off the schema, a refusal, cut
off) is a `MalformedAnswer` and the ticket goes to human triage.

Like the HTTP agent: a timeout per attempt, a few retries for what a retry can fix
(timeouts, connection errors, 5xx, 429), a circuit breaker, and every call reported
once to `record`. The client's own retries are off so that these bounds hold; a 429's
Retry-After is honoured when it is short, and ends the call when it is not (waiting
longer holds the ticket, and asking sooner only earns another 429).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime

import openai

from bot.agent.answer import (
    AgentAnswer,
    AgentUnavailable,
    CallRecorder,
    MalformedAnswer,
    Recommendation,
    TicketInput,
)
from bot.agent.breaker import CircuitBreaker
from bot.agent.grounding import CriticalHit, KnowledgeBase
from bot.agent.llm_prompt import (
    LlmDecision,
    Offer,
    build_messages,
    decision_schema,
    parse_decision,
    redact,
)
from bot.agent.routing import team_for
from bot.core import clock

log = logging.getLogger(__name__)

TOP_ARTICLES = 3
CRITICAL_CONFIDENCE = 0.95  # an explicit critical signal, as the embedded agent rates it
# The client refuses to start without a key; endpoints that need none (Ollama, vLLM
# without --api-key) get no Authorization header at all.
_NO_KEY = "no-key"


class RefusedAnswer(MalformedAnswer):
    """The model declined to answer (its `refusal`, or a content filter)."""


class _Retryable(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, message: str, *, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class LlmAgent:
    """Asks a language model behind an OpenAI-compatible endpoint."""

    name = "llm"

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None,
        timeout: float,
        retries: int,
        breaker: CircuitBreaker,
        knowledge: KnowledgeBase | None = None,
        teams: Iterable[str] = (),
        secrets: Iterable[str] = (),
        top_articles: int = TOP_ARTICLES,
        backoff: float = 0.05,
        max_retry_after: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the agent.

        Args:
            base_url: the endpoint's base URL, e.g. https://api.openai.com/v1.
            model: the model (or Azure deployment) name.
            api_key: sent as a Bearer token; None sends no Authorization header.
            timeout: seconds for each attempt.
            retries: extra attempts after the first (0 = one attempt only).
            breaker: the circuit breaker guarding this endpoint.
            knowledge: the articles and the critical check; default the shipped ones.
            teams: the teams the model may route to (article teams are added).
            secrets: values that must never reach the model (cut from the request text).
            top_articles: how many best-matching articles go into the prompt.
            backoff: seconds before the first retry, doubled for each next one.
            max_retry_after: the longest Retry-After (s) waited for; longer ends the call.
            sleep: how to wait between attempts (tests may record instead).
        """
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.base_url = str(base_url)
        self.model = model
        self.timeout = timeout
        self.retries = retries
        self.breaker = breaker
        self.knowledge = knowledge or KnowledgeBase()
        self.teams = tuple(dict.fromkeys(t for t in teams if t))
        self.top_articles = top_articles
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        # Headers the client would fill from OPENAI_* variables are left out, so that
        # what reaches the endpoint depends on our settings alone; without a key, so is
        # Authorization (the client checks for it per request, hence extra_headers).
        self._headers = {"OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit}
        if not api_key:
            self._headers["Authorization"] = openai.omit
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or _NO_KEY,
            timeout=timeout,
            max_retries=0,  # ours are bounded by AGENT_RETRIES and the breaker
        )

    def analyse(self, ticket: TicketInput, *, record: CallRecorder | None = None) -> AgentAnswer:
        """Escalate a critical request at once; otherwise ask the model.

        Args:
            ticket: the ticket; its description must not be blank.
            record: told exactly once about this call (ok, latency, attempts, error);
                attempts is 0 when the model was not asked.

        Returns:
            The answer: the embedded escalation for a critical request, else the model's
            decision mapped into an `AgentAnswer` (`source` "llm" or "llm:<article id>").

        Raises:
            ValueError: the description is empty or only whitespace.
            AgentUnavailable: the circuit is open, or every attempt failed.
            MalformedAnswer: the model answered off the schema or refused
                (`RefusedAnswer`).
        """
        if not ticket.description or not ticket.description.strip():
            raise ValueError("the ticket has no description to analyse")
        started = time.perf_counter()
        attempts = 0

        def report(ok: bool, error: str) -> None:
            if record is not None:
                latency = (time.perf_counter() - started) * 1000
                record(agent=self.name, ok=ok, latency_ms=latency, attempts=attempts, error=error)

        text = " ".join([ticket.description, *ticket.tags])
        hit = self.knowledge.critical(text)
        if hit is not None:
            report(True, "")
            return _escalation(hit)
        if not self.breaker.allow():
            refused = AgentUnavailable(f"agent circuit open until {self.breaker.retry_at()}")
            report(False, str(refused))
            raise refused

        offer = self._offer(text)
        messages = build_messages(redact(ticket.description, self._secrets), offer)
        response_format = decision_schema(offer)
        # The prompt holds the requester's words: only at DEBUG.
        log.debug("LLM request for ticket %s: %s", ticket.ticket_id, messages)
        last, wait = "no attempt made", 0.0
        while attempts <= self.retries:
            if attempts:
                self._sleep(wait)
            attempts += 1
            try:
                decision = self._attempt(messages, response_format, offer)
            except _Retryable as error:
                last = str(error)
                wait = error.wait if error.wait is not None else self.backoff * 2 ** (attempts - 1)
                log.info("LLM attempt %d for ticket %s failed: %s", attempts, ticket.ticket_id, last)
                continue
            except RefusedAnswer as error:
                # The endpoint works; the model declined. Not a reason to stop asking it.
                self.breaker.record_success()
                report(False, str(error))
                raise
            except AgentUnavailable as error:
                self.breaker.record_failure()
                report(False, str(error))
                raise
            self.breaker.record_success()
            report(True, "")
            return self._answer(decision, offer)
        self.breaker.record_failure()
        failure = AgentUnavailable(f"agent failed after {attempts} attempt(s): {last}")
        report(False, str(failure))
        raise failure

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def _offer(self, text: str) -> Offer:
        articles = self.knowledge.top_articles(text, self.top_articles)
        teams = tuple(dict.fromkeys([*self.teams, *(a.team for a in articles)]))
        return Offer(articles=articles, teams=teams)

    def _attempt(self, messages: list, response_format: dict, offer: Offer) -> LlmDecision:
        try:
            # Plain dicts are the wire form; the client's TypedDicts describe the same.
            completion = self._client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model,
                messages=messages,
                response_format=response_format,
                timeout=self.timeout,
                extra_headers=self._headers,
            )
        except openai.APITimeoutError:
            raise _Retryable(f"timed out after {self.timeout:g} s") from None
        except openai.APIConnectionError as error:
            cause = type(error.__cause__ or error).__name__
            raise _Retryable(f"connection failed ({cause})") from None
        except openai.RateLimitError as error:
            raise self._rate_limited(error.response.headers) from None
        except openai.APIStatusError as error:
            if error.status_code >= 500:
                raise _Retryable(f"HTTP {error.status_code}") from None
            # Our request is wrong, or the key is: asking again cannot help. The body is
            # left out (it may echo the key's prefix or the prompt).
            raise AgentUnavailable(
                f"the model endpoint refused the request: HTTP {error.status_code}"
            ) from None
        except openai.APIError as error:
            raise MalformedAnswer(
                f"the model endpoint's reply is not a chat completion ({type(error).__name__})"
            ) from None
        return parse_decision(_content(completion), offer)

    def _rate_limited(self, headers: Mapping[str, str]) -> Exception:
        asked = retry_after(headers)
        if asked is None:
            return _Retryable("HTTP 429")
        if asked > self.max_retry_after:
            return AgentUnavailable(
                f"the model endpoint is rate limited and asks to wait {asked:g} s "
                f"(more than the {self.max_retry_after:g} s a ticket may wait)"
            )
        return _Retryable(f"HTTP 429 (retry after {asked:g} s)", wait=asked)

    def _answer(self, decision: LlmDecision, offer: Offer) -> AgentAnswer:
        article = offer.article(decision.article_id)
        steps = tuple(s.strip() for s in decision.steps if s.strip())
        success = decision.success_probability
        if article is not None:
            steps = steps or article.steps
            # The article's figure is measured; the model's is a guess. Trust the lower.
            success = min(success, article.success_probability)
        return AgentAnswer(
            confidence=decision.confidence,
            recommended_action=decision.recommended_action,
            reasoning=decision.reasoning.strip(),
            category=decision.category,
            suggested_team=decision.suggested_team
            or (article.team if article else team_for(decision.category)),
            steps=steps,
            estimated_time=article.estimated_time if article else "",
            success_probability=success,
            source=f"llm:{article.id}" if article else "llm",
            extra={"questions": [q.strip() for q in decision.questions if q.strip()],
                   "model": self.model},
        )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a 429 asks us to wait: `retry-after-ms`, or `Retry-After` in seconds or as a date.

    Args:
        headers: the response headers (case-insensitive mapping).

    Returns:
        The wait in seconds (>= 0), or None when the response names none we can read.
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - clock.now()).total_seconds())


def _content(completion: object) -> str | None:
    try:
        choice = completion.choices[0]  # type: ignore[attr-defined]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        finish = getattr(choice, "finish_reason", None)
        content = message.content
    except (AttributeError, IndexError, TypeError, KeyError):
        raise MalformedAnswer("the model endpoint's reply is not a chat completion") from None
    if refusal:
        raise RefusedAnswer(f"the model refused to answer: {str(refusal)[:200]}")
    if finish == "content_filter":
        raise RefusedAnswer("the model's answer was withheld by a content filter")
    if finish == "length":
        raise MalformedAnswer("the model's answer was cut off (too long)")
    if content is not None and not isinstance(content, str):
        raise MalformedAnswer("the model's answer is not text")
    return content


def _escalation(hit: CriticalHit) -> AgentAnswer:
    return AgentAnswer(
        confidence=CRITICAL_CONFIDENCE,
        recommended_action=Recommendation.ESCALATE,
        reasoning=hit.reason,
        category=hit.category,
        severity="critical",
        complexity="high",
        suggested_team=hit.team,
        steps=hit.steps,
        estimated_time="immediate response",
        success_probability=0.0,
        source=f"critical:{hit.kind.replace(' ', '_')}",
    )
