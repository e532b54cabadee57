"""The HTTP agent: the reference agent service's wire format over POST.

Retries only what a retry can fix (connection errors, timeouts, 5xx, 429), a few
times with a short exponential backoff, so a Slack request is never held for long;
a circuit breaker stops calling a service that keeps failing. Every call, whatever
its outcome, is reported once to the `record` callback (the agent-error alert counts
them).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from bot.agent.answer import (
    AgentAnswer,
    AgentUnavailable,
    CallRecorder,
    MalformedAnswer,
    TicketInput,
)
from bot.agent.breaker import CircuitBreaker
from bot.agent.routing import team_for

log = logging.getLogger(__name__)


class _Retryable(Exception):
    """One attempt failed in a way another attempt may fix."""


class HttpAgent:
    """Asks a remote agent service over HTTP."""

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retries: int,
        breaker: CircuitBreaker,
        client: httpx.Client | None = None,
        backoff: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the agent.

        Args:
            url: the agent service's analyse endpoint.
            timeout: seconds for each attempt (connect, read and write).
            retries: extra attempts after the first (0 = one attempt only).
            breaker: the circuit breaker guarding this service.
            client: an httpx client to reuse; default one owned by this agent.
            backoff: seconds before the first retry, doubled for each next one; the
                default keeps two retries under 0.15 s of waiting.
            sleep: how to wait between attempts (tests may pass a no-op).
        """
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.url = str(url)
        self.timeout = timeout
        self.retries = retries
        self.breaker = breaker
        self.backoff = backoff
        self._sleep = sleep
        self._owns_client = client is None
        self._client = client or httpx.Client()

    def analyse(self, ticket: TicketInput, *, record: CallRecorder | None = None) -> AgentAnswer:
        """POST the ticket to the agent service and parse its answer.

        Args:
            ticket: the ticket to analyse.
            record: told exactly once about this call (ok, latency, attempts, error).

        Returns:
            The parsed answer, `suggested_team` filled from the routing table if absent.

        Raises:
            AgentUnavailable: the circuit is open, or every attempt failed.
            MalformedAnswer: the service answered, but not in the wire format.
        """
        started = time.perf_counter()
        attempts = 0

        def report(ok: bool, error: str) -> None:
            if record is not None:
                latency = (time.perf_counter() - started) * 1000
                record(agent=self.name, ok=ok, latency_ms=latency, attempts=attempts, error=error)

        if not self.breaker.allow():
            error = AgentUnavailable(f"agent circuit open until {self.breaker.retry_at()}")
            report(False, str(error))
            raise error
        body = ticket.to_wire()
        # The description is the requester's own words: only at DEBUG.
        log.debug("agent request for ticket %s: %s", ticket.ticket_id, body)
        last = "no attempt made"
        while attempts <= self.retries:
            if attempts:
                self._sleep(self.backoff * 2 ** (attempts - 1))
            attempts += 1
            try:
                answer = self._attempt(body)
            except _Retryable as error:
                last = str(error)
                log.info(
                    "agent attempt %d for ticket %s failed: %s", attempts, ticket.ticket_id, last
                )
                continue
            except AgentUnavailable as error:
                self.breaker.record_failure()
                report(False, str(error))
                raise
            self.breaker.record_success()
            report(True, "")
            return answer
        self.breaker.record_failure()
        failure = AgentUnavailable(f"agent failed after {attempts} attempt(s): {last}")
        report(False, str(failure))
        raise failure

    def _attempt(self, body: dict[str, Any]) -> AgentAnswer:
        try:
            response = self._client.post(self.url, json=body, timeout=self.timeout)
        except httpx.TimeoutException:
            raise _Retryable(f"timed out after {self.timeout:g} s") from None
        except httpx.TransportError as error:
            raise _Retryable(f"connection failed ({type(error).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}")
        if status >= 400:
            # Our request is wrong (or unauthorised); sending it again cannot help.
            raise AgentUnavailable(f"agent refused the request: HTTP {status}")
        if not 200 <= status < 300:
            raise MalformedAnswer(f"agent answered HTTP {status}, expected 2xx")
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedAnswer("agent answer is not valid JSON") from None
        answer = AgentAnswer.from_wire(data, source="http")
        if not answer.suggested_team:
            answer = replace(answer, suggested_team=team_for(answer.category))
        return answer

    def close(self) -> None:
        """Close the HTTP client's connections, if this agent created the client."""
        if self._owns_client:
            self._client.close()
