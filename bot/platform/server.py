"""The HTTP front: `POST /slack/events` into Bolt, `GET /healthz`, on gunicorn.

Checks that Bolt leaves to us happen here, before the body is parsed: a timestamp
that is not a number is a 401 (Bolt 1.30 answers 500), the signature is verified
before anything is decoded, and a signed body that Bolt cannot parse is a 400, never
a 500 with a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from slack_bolt import App, BoltRequest

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Slack's payloads are small; anything this big is not from Slack.
MAX_BODY = 1024 * 1024
# Slack refuses requests older than five minutes; so do we (replay protection).
MAX_CLOCK_SKEW = 60 * 5

Health = Callable[[], tuple[bool, dict[str, str]]]


def _reply(start_response, status: str, body: Any, headers: list[tuple[str, str]] | None = None):
    if isinstance(body, (dict, list)):
        payload = json.dumps(body).encode()
        content_type = "application/json"
    else:
        payload = str(body).encode()
        content_type = "text/plain; charset=utf-8"
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(payload)))] + (headers or []),
    )
    return [payload]


class SlackWSGI:
    """A WSGI application serving Slack's requests through a Bolt app."""

    def __init__(self, app: App, *, signing_secret: str, health: Health):
        self._app = app
        self._secret = signing_secret.encode()
        self._health = health

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            ok, report = self._health()
            return _reply(start_response, "200 OK" if ok else "503 Service Unavailable", report)
        if path != EVENTS_PATH:
            return _reply(start_response, "404 Not Found", "Not Found")
        if method != "POST":
            return _reply(start_response, "405 Method Not Allowed", "Use POST", [("Allow", "POST")])
        return self._events(environ, start_response)

    def _events(self, environ: dict, start_response) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _reply(start_response, "400 Bad Request", "Bad Content-Length")
        if length > MAX_BODY:
            return _reply(start_response, "413 Content Too Large", "Too large")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not self._authentic(raw, timestamp, signature):
            return _reply(start_response, "401 Unauthorized", "Invalid request")
        try:
            body = raw.decode("utf-8")
            request = BoltRequest(
                body=body, query=environ.get("QUERY_STRING", ""), headers=_headers(environ)
            )
        except Exception:  # a signed body that is not a Slack payload
            log.info("unparsable signed request body (%d bytes)", len(raw))
            return _reply(start_response, "400 Bad Request", "Malformed request")
        try:
            response = self._app.dispatch(request)
        except Exception:
            # Listener errors are answered by the app's error handler; what escapes
            # dispatch is Bolt failing to read a signed payload of an unexpected shape.
            error_id = uuid.uuid4().hex[:12]
            log.warning("unreadable Slack payload (error id %s)", error_id, exc_info=True)
            return _reply(start_response, "400 Bad Request", f"Malformed request ({error_id})")
        headers = [(k, v) for k, values in response.headers.items() for v in values]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        payload = (response.body or "").encode()
        headers.append(("Content-Length", str(len(payload))))
        start_response(f"{response.status} {_REASONS.get(response.status, 'OK')}", headers)
        return [payload]


    def _authentic(self, raw: bytes, timestamp: str, signature: str) -> bool:
        """Slack's check: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`.

        Computed on the raw bytes (slack_sdk's verifier decodes the body first, and a
        body that is not UTF-8 would raise instead of failing the check).
        """
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return False
        if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW:
            return False
        if not signature.isascii():
            return False
        base = b"v0:" + timestamp.encode() + b":" + raw
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


def _headers(environ: dict) -> dict[str, str | Sequence[str]]:
    headers: dict[str, str | Sequence[str]] = {
        k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
    }
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


def run_gunicorn(wsgi_factory: Callable[[], Any], *, host: str, port: int, threads: int,
                 workers: int = 1) -> None:
    """Serve with gunicorn: `workers` processes of `threads` request threads each.

    One worker unless Redis holds the limits (the settings refuse more without it):
    the embedded mode keeps its limits and job scheduler in the process. The app is
    built in each worker (after the fork), so no connection crosses a fork.
    """
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("keepalive", 5)

        def load(self):
            return wsgi_factory()

    _Server().run()
