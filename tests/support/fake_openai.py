"""A fake OpenAI-compatible Chat Completions endpoint on loopback, port 0.

The test scripts its replies (a good decision, malformed JSON content, an off-schema
decision, a refusal, 429 with Retry-After, a slow answer, a 5xx) and reads back every
request it received: the path, the headers and the JSON body, so it can assert on the
prompt and on how many requests were made.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from bot.sandbox.loopback import LoopbackHTTPServer

VPN_REQUEST = "My VPN keeps disconnecting when I work from home"


def decision(**overrides: Any) -> dict[str, Any]:
    """A valid decision for `VPN_REQUEST`, citing the shipped `vpn` article; `overrides` replace keys."""
    answer: dict[str, Any] = {
        "recommended_action": "auto_resolve",
        "confidence": 0.92,
        "article_id": "vpn",
        "category": "vpn",
        "suggested_team": "Network",
        "steps": ["Quit the VPN client completely and reconnect.",
                  "Restart the laptop, then connect the VPN first."],
        "success_probability": 0.9,
        "questions": [],
        "reasoning": "The request is a VPN that drops at home; the VPN article covers it.",
    }
    answer.update(overrides)
    return answer


@dataclass(frozen=True)
class Reply:
    """One scripted reply: a chat completion (content, refusal, finish reason) or an error."""

    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    # A whole body instead of a chat completion (errors, or something else entirely).
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def answer(data: Any) -> Reply:
    """A chat completion whose content is `data` as JSON."""
    return Reply(content=json.dumps(data))


GOOD = answer(decision())
MALFORMED_JSON = Reply(content='{"recommended_action": "auto_resolve", "confidence": 0.9')
OFF_SCHEMA = answer(decision(confidence=1.7))
REFUSAL = Reply(refusal="I'm sorry, but I can't help with that request.")
SERVER_ERROR = Reply(status=500, body={"error": {"message": "The server had an error",
                                                 "type": "server_error", "code": None}})


def rate_limited(retry_after: str | None = "1", *, header: str = "Retry-After") -> Reply:
    """A 429 in OpenAI's error shape, with a Retry-After (or another header) when given."""
    headers = {header: retry_after} if retry_after is not None else {}
    return Reply(status=429, headers=headers, body={"error": {
        "message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}})


def slow(seconds: float, reply: Reply = GOOD) -> Reply:
    """`reply`, but only after `seconds` (longer than the client's timeout)."""
    return Reply(status=reply.status, content=reply.content, refusal=reply.refusal,
                 finish_reason=reply.finish_reason, body=reply.body, headers=reply.headers,
                 delay=seconds)


@dataclass
class Received:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any

    @property
    def prompt(self) -> str:
        """Every message's content, joined: what the model was told."""
        return "\n".join(str(m.get("content")) for m in self.body.get("messages", []))


class FakeOpenAI(LoopbackHTTPServer):
    """The running fake: `base_url`, its script, and what it received."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, *replies: Reply) -> None:
        """Set the replies for the next requests, in order; after them, `GOOD`."""
        with self._lock:
            self.script = list(replies)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self.script.pop(0) if self.script else GOOD

    def _completion(self, reply: Reply, model: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoints

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = {}
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                reply = fake._next(Received(self.path, dict(self.headers), raw, body))
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if reply.body is not None else fake._completion(
                    reply, str(body.get("model", "")))
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timed out) before the slow reply

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output quiet

        return Handler
