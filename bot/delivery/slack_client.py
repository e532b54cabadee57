"""The app's one Slack Web API client: explicit timeout, bounded retries, safe calls.

Every Web API call ResolveMeQ makes goes through a client built by
:func:`make_web_client`, so the base URL (``SLACK_API_URL``, a local fake in tests),
the timeout and the retry policy are decided in one place:

- HTTP 429: wait what ``Retry-After`` says and try again, at most ``max_retries``
  times; if Slack asks for a wait longer than the cap, give up at once (a request path
  or a worker must not hang for minutes; the job layer can retry later).
- Connection errors (refused, reset, closed without an answer) and HTTP 500/502/503/
  504: retry with a short exponential backoff. A *read timeout* is not retried: Slack
  may already have acted on the request, and a second chat.postMessage would post twice.
- Connections are kept alive and reused (:class:`PooledWebClient`; response URLs through
  :class:`PooledWebhookClient`): no TCP and TLS handshake per call.

:func:`safe_call` turns failures into values. Errors that will not go away by trying
again (a channel that does not exist, a message too long) are logged and return
``None``; anything else returns ``None`` too, or raises :class:`SlackUnavailable` when
the caller asks, so a job can schedule a retry. A refused token or grant
(:data:`TOKEN_ERRORS`) is neither: it passes once an operator fixes the token or
reinstalls the app, so it raises :class:`SlackTokenRefused` when the caller asks, and
the outbox holds what it owes until then. Logs carry the method, the error code and the
channel, never the token or the message text.
"""

from __future__ import annotations

import logging
import random
import time
from http.client import HTTPException, HTTPMessage, RemoteDisconnected
from io import BytesIO
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

import urllib3
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    HttpRequest,
    HttpResponse,
    Jitter,
    RetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient, WebhookResponse

from bot.core.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
"""Seconds per HTTP attempt (slack_sdk's own default is 30, too long for a request path)."""
MAX_RETRIES = 2
"""Retries after the first attempt, shared by all causes: at most 3 attempts per call."""
MAX_RATE_LIMIT_WAIT = 30.0
"""The longest ``Retry-After`` we sleep through; longer asks fail the call instead."""
_BACKOFF_FACTOR = 0.5  # 0.5 s, then 1 s (plus jitter) between connection/5xx retries
_MAX_JITTER = 0.25  # spreads retries of many workers without adding seconds to each

PERMANENT_ERRORS: frozenset[str] = frozenset(
    {
        # The target is gone or out of reach.
        "channel_not_found", "not_in_channel", "is_archived", "user_not_found",
        "users_not_found", "user_not_visible", "cannot_dm_bot",
        "message_not_found", "cant_update_message", "cant_delete_message",
        "restricted_action", "not_found", "thread_not_found",
        # The bot may not act in this conversation (it is not a member).
        "no_permission",
        # The request itself is wrong; sending it again gives the same answer.
        "msg_too_long", "no_text", "invalid_blocks", "invalid_blocks_format",
        "invalid_attachments", "too_many_attachments", "invalid_metadata_format",
        "invalid_metadata_schema", "metadata_too_large", "invalid_arguments",
        "invalid_arg_name", "invalid_form_data", "invalid_trigger_id", "expired_trigger_id",
        "view_too_large", "duplicate_external_id", "hash_conflict", "already_reacted",
        "too_many_reactions", "invalid_name", "unknown_method",
    }
)
"""Slack error codes that retrying cannot fix; :func:`safe_call` never raises for these."""

TOKEN_ERRORS: frozenset[str] = frozenset(
    {
        # The token is missing, wrong, revoked, expired (rotation) or its bot deleted.
        "not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive",
        "not_allowed_token_type",
        # The install lacks a grant: a scope, an org workspace, posting (EKM), the network.
        "missing_scope", "team_access_not_granted", "ekm_access_denied", "accesslimited",
        # The workspace is being migrated into an Enterprise org.
        "org_login_required",
    }
)
"""Slack error codes that say the bot's token or the app's grants are refused (Slack's
common Web API errors). No call works until an operator fixes the token or reinstalls
the app, and then they all do: :func:`safe_call` raises :class:`SlackTokenRefused` for
these when asked to raise."""


class SlackUnavailable(Exception):
    """Slack did not accept a call after the retries, for a reason that may pass.

    Attributes:
        method: the Web API method, e.g. ``chat.postMessage``.
        error: Slack's error code, ``http_<status>``, or the network exception's name.
        status: the HTTP status, when Slack answered at all.
        retry_after: seconds Slack asked us to wait (HTTP 429), if it said.
    """

    def __init__(
        self,
        method: str,
        error: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"Slack {method} unavailable: {error}")
        self.method = method
        self.error = error
        self.status = status
        self.retry_after = retry_after


class SlackTokenRefused(SlackUnavailable):
    """Slack refused the bot's token or the app's grants (one of :data:`TOKEN_ERRORS`).

    A :class:`SlackUnavailable`, so a caller that only knows "retry later" still does
    the safe thing; the outbox holds the message instead, until the token works.
    """


def _header(headers: Any, name: str) -> str | None:
    """One header's value from slack_sdk's header shapes (dict of str or of lists)."""
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            if isinstance(value, (list, tuple)):
                return str(value[0]) if value else None
            return str(value)
    return None


def _retry_after(headers: Any) -> float | None:
    value = _header(headers, "retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date or garbage: treated as "not said"


class _SmallJitter(Jitter):
    def recalculate(self, duration: float) -> float:
        return duration + random.random() * _MAX_JITTER


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries HTTP 429 after ``Retry-After``, but never sleeps longer than ``max_wait``.

    slack_sdk's handler sleeps whatever Slack says, with no cap; a worker told to wait
    ten minutes would hold its slot for ten minutes. Here such a call fails instead.

    Args:
        max_retry_count: retries allowed (the attempt counter is shared with the other
            handlers of the same client).
        max_wait: the longest ``Retry-After`` honoured, in seconds.
    """

    def __init__(self, max_retry_count: int = MAX_RETRIES,
                 max_wait: float = MAX_RATE_LIMIT_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _wait(self, response: HttpResponse | None) -> float:
        said = _retry_after(response.headers if response is not None else None)
        return 1.0 if said is None else said  # Slack always sends it; 1 s if it did not

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            response is not None
            and response.status_code == 429
            and self._wait(response) <= self.max_wait
        )

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        """Sleep what Slack asked (plus a little jitter, within the cap), then go again."""
        state.next_attempt_requested = True
        wait = self._wait(response)
        time.sleep(min(wait + random.random() * _MAX_JITTER, self.max_wait))
        state.increment_current_attempt()


class GatewayAwareServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retries 500 and 503 like slack_sdk's handler, and also 502 and 504.

    Gateway errors come from the load balancers in front of Slack and pass like a 503.
    """

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in (500, 502, 503, 504)


def retry_handlers(
    *, max_retries: int = MAX_RETRIES, max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT
) -> list[RetryHandler]:
    """The retry policy of :func:`make_web_client`, as slack_sdk handlers.

    Args:
        max_retries: retries after the first attempt.
        max_rate_limit_wait: the longest ``Retry-After`` honoured, in seconds.

    Returns:
        Handlers for rate limits, connection errors and server errors.
    """
    backoff = BackoffRetryIntervalCalculator(backoff_factor=_BACKOFF_FACTOR, jitter=_SmallJitter())
    return [
        BoundedRateLimitRetryHandler(max_retry_count=max_retries, max_wait=max_rate_limit_wait),
        ConnectionErrorRetryHandler(max_retry_count=max_retries, interval_calculator=backoff),
        GatewayAwareServerErrorRetryHandler(max_retry_count=max_retries,
                                            interval_calculator=backoff),
    ]


POOL_CONNECTIONS = 16
"""Keep-alive connections kept per host; more may open under load, and are closed after use."""


def connection_pool(ssl_context: Any = None) -> urllib3.PoolManager:
    """Keep-alive connections for Slack clients to share (:class:`PooledWebClient`)."""
    return urllib3.PoolManager(num_pools=4, maxsize=POOL_CONNECTIONS, block=False,
                               ssl_context=ssl_context, retries=False)


class PooledWebClient(WebClient):
    """A ``WebClient`` whose calls reuse keep-alive HTTP connections.

    slack_sdk's client opens a new connection (and, to slack.com, a new TLS session) for
    every call through ``urllib``. This one sends the same request through a urllib3
    pool and answers exactly as ``urllib`` would: an ``HTTPError`` for a status of 400
    and above, ``URLError`` when no connection could be made, ``RemoteDisconnected``
    when the server closed it without an answer, ``TimeoutError`` when the answer did
    not come in time; so slack_sdk's retry handlers and :func:`safe_call` see what they
    always saw. urllib3 retries nothing itself; before reusing a pooled connection it
    checks that the server has not closed it.
    """

    def __init__(self, *args: Any, pool: urllib3.PoolManager | None = None, **kwargs: Any) -> None:
        """Args as ``WebClient``'s; `pool`: connections shared with other clients (a
        client made per call keeps its connections there)."""
        super().__init__(*args, **kwargs)
        self._pool = pool or connection_pool(self.ssl)

    def sharing(self, *, timeout: float, retries: bool = False) -> PooledWebClient:
        """A client for the same workspace and connections, with its own timeout and,
        unless `retries`, no retry handlers (the quick lookups of the request path)."""
        return PooledWebClient(token=self.token, base_url=self.base_url, pool=self._pool,
                               timeout=timeout,  # float seconds (slack_sdk types it as int)
                               retry_handlers=self.retry_handlers if retries else [])

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy is not None or not url.lower().startswith("http"):
            return super()._perform_urllib_http_request_internal(url, req)
        status, headers, data = _pooled_request(self._pool, url, req, self.timeout)
        if headers.get_content_type() == "application/gzip":
            return {"status": status, "headers": headers, "body": data}
        charset = headers.get_content_charset() or "utf-8"
        return {"status": status, "headers": headers, "body": data.decode(charset)}


def quick_client(client: WebClient, *, timeout: float) -> WebClient:
    """A client for `client`'s workspace with a short timeout and no retries (a lookup
    on the request path fails closed rather than wait), over `client`'s keep-alive
    connections when it has them."""
    if isinstance(client, PooledWebClient):
        return client.sharing(timeout=timeout)
    return WebClient(token=client.token, base_url=client.base_url,
                     timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
                     retry_handlers=[])


def _pooled_request(pool: urllib3.PoolManager, url: str, req: Request,
                    timeout: float) -> tuple[int, HTTPMessage, bytes]:
    """Send a urllib request through a urllib3 pool; fail as urllib would (see
    :class:`PooledWebClient`)."""
    try:
        answer = pool.request(
            req.get_method(), url, body=req.data,  # type: ignore[arg-type]
            headers=dict(req.header_items()), redirect=False, retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
    except urllib3.exceptions.ReadTimeoutError as error:
        raise TimeoutError(str(error)) from error  # not retried: Slack may have acted
    except urllib3.exceptions.ProtocolError as error:
        raise RemoteDisconnected(str(error)) from error
    except urllib3.exceptions.HTTPError as error:  # refused, unreachable, connect timeout
        raise URLError(error) from error
    headers = HTTPMessage()
    for name, value in answer.headers.items():
        headers[name] = value
    if answer.status >= 400:
        raise HTTPError(url, answer.status, answer.reason or "", headers, BytesIO(answer.data))
    return answer.status, headers, answer.data


# Response URLs (hooks.slack.com) are one host for every click: one pool for the process.
_RESPONSE_URLS = urllib3.PoolManager(num_pools=2, maxsize=POOL_CONNECTIONS, block=False,
                                     retries=False)


class PooledWebhookClient(WebhookClient):
    """A ``WebhookClient`` (a response URL's) over the process's keep-alive connections,
    failing as ``urllib`` would, like :class:`PooledWebClient`."""

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        if self.proxy is not None or not url.lower().startswith("http"):
            return super()._perform_http_request_internal(url, req)
        status, headers, data = _pooled_request(_RESPONSE_URLS, url, req, self.timeout)
        return WebhookResponse(url=url, status_code=status,
                               body=data.decode(headers.get_content_charset() or "utf-8"),
                               headers=headers)  # type: ignore[arg-type]


def make_web_client(
    settings: Settings,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = MAX_RETRIES,
    max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT,
) -> WebClient:
    """Build the Web API client for ``SLACK_API_URL`` and ``SLACK_BOT_TOKEN``.

    Args:
        settings: the application settings.
        timeout: seconds per HTTP attempt.
        max_retries: retries after the first attempt (all causes together).
        max_rate_limit_wait: the longest ``Retry-After`` honoured, in seconds.

    Returns:
        A ``slack_sdk.WebClient`` with the timeout and retry policy set, over
        keep-alive connections (:class:`PooledWebClient`).
    """
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return PooledWebClient(
        token=token,
        # WebClient adds the trailing "/" that urljoin needs to keep ".../api".
        base_url=str(settings.slack_api_url),
        timeout=timeout,  # urllib takes float seconds (slack_sdk types it as int)
        retry_handlers=retry_handlers(
            max_retries=max_retries, max_rate_limit_wait=max_rate_limit_wait
        ),
    )


def _error_code(error: SlackApiError) -> str | None:
    data = getattr(error.response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    return str(code) if code else None


def safe_call(
    client: WebClient, method: str, *, raise_transient: bool = False, **kwargs: Any
) -> SlackResponse | None:
    """Call a Web API method; failures are logged and become ``None``.

    Args:
        client: a client from :func:`make_web_client` (its retries run first).
        method: ``chat.postMessage`` or ``chat_postMessage``.
        raise_transient: raise :class:`SlackUnavailable` for failures that may pass
            (rate limits, 5xx, network, timeouts, unknown error codes) so a job can
            retry later, and :class:`SlackTokenRefused` for a refused token or grant.
            Permanent errors never raise.
        **kwargs: the method's arguments.

    Returns:
        The response, or ``None`` if the call failed.

    Raises:
        SlackUnavailable: only with ``raise_transient=True``, for a non-permanent failure
            (:class:`SlackTokenRefused` when the token or a grant was refused).
        ValueError: ``method`` is not a Web API method of the client (a bug, not Slack).
    """
    name = method.replace(".", "_")
    call = getattr(client, name, None)
    if name.startswith("_") or not callable(call):
        raise ValueError(f"not a Slack Web API method: {method!r}")
    channel = kwargs.get("channel")
    try:
        return call(**kwargs)
    except SlackApiError as error:
        status = error.response.status_code
        code = _error_code(error)
        if code in PERMANENT_ERRORS:
            logger.warning("Slack %s failed permanently: error=%s channel=%s", method, code, channel)
            return None
        if code in TOKEN_ERRORS:
            # An operator must act (SLACK_BOT_TOKEN, the app's scopes): say it loudly.
            logger.error("Slack %s refused the bot token or the app's grants: error=%s "
                         "channel=%s; fix SLACK_BOT_TOKEN or reinstall the app", method, code, channel)
            if raise_transient:
                raise SlackTokenRefused(method, code, status=status) from error
            return None
        failure = SlackUnavailable(
            method, code or f"http_{status}", status=status,
            retry_after=_retry_after(error.response.headers) if status == 429 else None,
        )
        cause: Exception = error
    except (OSError, HTTPException) as error:
        # URLError, timeouts, resets and disconnects are all OSError or HTTPException.
        failure = SlackUnavailable(method, type(error).__name__)
        cause = error
    logger.warning("Slack %s unavailable after retries: error=%s status=%s channel=%s",
                   method, failure.error, failure.status, channel)
    if raise_transient:
        raise failure from cause
    return None


def respond(response_url: str, *, text: str, blocks: list | None = None,
            replace_original: bool = False, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Answer through a click's or a command's response URL: an ephemeral message to
    the person who clicked, wherever they were, the bot in that channel or not.

    Args:
        response_url: the ``response_url`` of the request (Slack's; it takes five
            answers within 30 minutes).
        text: the fallback text.
        blocks: the message's blocks.
        replace_original: replace the message that was clicked (an ephemeral confirm
            step, so it cannot be clicked again) instead of adding a new one.
        timeout: seconds per HTTP attempt.

    Returns:
        Whether Slack took it; failures are logged (never the URL, it is a credential).
    """
    client = PooledWebhookClient(response_url, timeout=int(max(timeout, 1)),
                                 retry_handlers=retry_handlers())
    try:
        answer = client.send(text=text, blocks=blocks, response_type="ephemeral",
                             replace_original=replace_original)
    except (OSError, HTTPException) as error:
        logger.warning("a response URL could not be reached: %s", type(error).__name__)
        return False
    if answer.status_code != 200:
        logger.warning("a response URL refused the answer: http_%s %s", answer.status_code,
                       (answer.body or "")[:40])
        return False
    return True
