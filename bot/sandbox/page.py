"""The page's HTTP API on the stand-in's port: `/sandbox/*` (JSON and a live event
stream) and the static page at `/` (`bot/sandbox/static/`). The contract with the page
is docs/SANDBOX.md.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from bot.sandbox import people
from bot.sandbox.workspace import PageError, SandboxSlack

STATIC_DIR = Path(__file__).with_name("static")
# An event stream says something at least this often, so a proxy or browser that
# dropped the connection is noticed (and the page reconnects).
KEEPALIVE_SECONDS = 15.0
_MAX_BODY = 256 * 1024

Args = dict[str, Any]


class Controls(Protocol):
    """The clock and the jobs, which live with the bot's process (`bot.sandbox.run`)."""

    def clock_state(self) -> Args: ...

    def advance(self, seconds: float) -> Args: ...

    def run_jobs(self) -> Args: ...


class Page:
    """Routes one stand-in's non-API requests; `SandboxSlack._page_request` calls it."""

    def __init__(self, slack: SandboxSlack, controls: Controls, static_dir: Path = STATIC_DIR) -> None:
        self.slack, self.controls, self.static_dir = slack, controls, static_dir
        self._posts: dict[str, Callable[[Args], Args]] = {
            "/sandbox/send": self._send, "/sandbox/click": self._click, "/sandbox/submit": self._submit,
            "/sandbox/close": self._close, "/sandbox/react": self._react,
            "/sandbox/shortcut": self._shortcut, "/sandbox/home": self._home,
            "/sandbox/clock": self._clock,
        }

    def handle(self, handler: BaseHTTPRequestHandler, path: str, query: str) -> bool:
        """Answer the request if it is the page's; False leaves it to the Web API."""
        method = handler.command
        try:
            if path == "/sandbox/state" and method == "GET":
                params = parse_qs(query)
                user = (params.get("user") or [people.REQUESTER])[-1]
                if people.person(user) is None:
                    raise PageError(f"unknown person {user!r}", 404)
                read = params.get("read")
                state = self.slack.view_state(user, read=read[-1] if read else None)
                state["clock"] = self.controls.clock_state()
                state["examples"] = [dict(e) for e in people.EXAMPLES]
                _json(handler, 200, state)
            elif path == "/sandbox/events" and method == "GET":
                self._stream(handler)
            elif path in self._posts:
                if method != "POST":
                    raise PageError("use POST", 405)
                _json(handler, 200, self._posts[path](_body(handler)))
            elif path.startswith("/sandbox/"):
                raise PageError(f"no such page API: {path}", 404)
            elif method == "GET" and not path.startswith(("/api/", "/response/")):
                self._static(handler, path)
            else:
                return False
        except PageError as error:
            _json(handler, error.status, {"ok": False, "error": error.message})
        return True

    # ----- the actions ---------------------------------------------------------------

    def _send(self, body: Args) -> Args:
        return self.slack.send(_need(body, "user"), _need(body, "channel"), _need(body, "text"),
                               body.get("thread_ts") or None)

    def _click(self, body: Args) -> Args:
        return self.slack.click(_need(body, "user"), _need(body, "action_id"),
                                str(body.get("block_id") or ""),
                                channel=body.get("channel"), message_ts=body.get("message_ts"),
                                view_id=body.get("view_id"), value=body.get("value"),
                                selected_option=body.get("selected_option"), values=body.get("values"))

    def _submit(self, body: Args) -> Args:
        return self.slack.submit(_need(body, "user"), _need(body, "view_id"), body.get("values") or {})

    def _close(self, body: Args) -> Args:
        return self.slack.close(_need(body, "user"), _need(body, "view_id"))

    def _react(self, body: Args) -> Args:
        return self.slack.react(_need(body, "user"), _need(body, "channel"), _need(body, "ts"),
                                str(body.get("name") or "ticket"))

    def _shortcut(self, body: Args) -> Args:
        return self.slack.shortcut(_need(body, "user"), _need(body, "channel"), _need(body, "ts"),
                                   str(body.get("callback_id") or "create_ticket"))

    def _home(self, body: Args) -> Args:
        return self.slack.open_home(_need(body, "user"))

    def _clock(self, body: Args) -> Args:
        if body.get("advance_seconds") is not None:
            try:
                seconds = float(body["advance_seconds"])
            except (TypeError, ValueError):
                raise PageError("advance_seconds must be a number of seconds") from None
            if not 0 < seconds <= 366 * 86400:
                raise PageError("advance_seconds must be more than 0 and at most a year")
            answer = self.controls.advance(seconds)
        elif body.get("run_jobs"):
            answer = self.controls.run_jobs()
        else:
            raise PageError('send {"run_jobs": true} or {"advance_seconds": N}')
        self.slack.changed()
        return {"ok": True, **answer}

    # ----- streams and files ---------------------------------------------------------

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        """Server-sent events: `data: {"version": N}` at once and whenever it changes."""
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        seen = -1
        try:
            while True:
                version = self.slack.wait_version(seen, KEEPALIVE_SECONDS)
                if version != seen:
                    handler.wfile.write(f"data: {json.dumps({'version': version})}\n\n".encode())
                    seen = version
                else:
                    handler.wfile.write(b": keep-alive\n\n")
                handler.wfile.flush()
        except OSError:
            return  # the page went away

    def _static(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        name = path.removeprefix("/static/").lstrip("/") or "index.html"
        root = self.static_dir.resolve()
        file = (root / name).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            if name == "index.html":  # the page is not built yet: say where the API is
                return _text(handler, 200, "ResolveMeQ sandbox: the page is not installed; "
                             "the API is at /sandbox/state?user=UREQ\n", "text/plain")
            raise PageError(f"not found: {path}", 404)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        return _text(handler, 200, file.read_bytes(), kind)


def _need(body: Args, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise PageError(f"{name} is required")
    return value


def _body(handler: BaseHTTPRequestHandler) -> Args:
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        raise PageError("bad Content-Length") from None
    if length > _MAX_BODY:
        raise PageError("request too large", 413)
    raw = handler.rfile.read(length) if length else b"{}"
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise PageError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise PageError("the body must be a JSON object")
    return body


def _json(handler: BaseHTTPRequestHandler, status: int, body: Args) -> None:
    _text(handler, status, json.dumps(body), "application/json; charset=utf-8")


def _text(handler: BaseHTTPRequestHandler, status: int, body: str | bytes, kind: str) -> None:
    data = body.encode() if isinstance(body, str) else body
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:
        pass  # the page went away
