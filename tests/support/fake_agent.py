"""A fake of the reference agent service: a threaded stdlib HTTP server on port 0.

The test scripts its replies (good answer, 500, 429, slow, malformed JSON, ...) and
reads back every request it received, so it can assert on the wire body and on how
many requests were made (e.g. none while the circuit is open).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def good_answer(**overrides: Any) -> dict[str, Any]:
    """A valid answer in the reference agent's wire format; `overrides` replace top keys."""
    answer: dict[str, Any] = {
        "confidence": 0.91,
        "recommended_action": "auto_resolve",
        "analysis": {
            "category": "vpn",
            "severity": "low",
            "complexity": "low",
            "suggested_team": "Network",
        },
        "solution": {
            "steps": ["Quit the VPN client", "Reconnect"],
            "estimated_time": "5 minutes",
            "success_probability": 0.88,
        },
        "reasoning": "VPN drops are usually a stale client session.",
    }
    answer.update(overrides)
    return answer


@dataclass(frozen=True)
class Reply:
    """One scripted reply: a status, a body (JSON value or raw bytes) and a delay."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    delay: float = 0.0

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(good_answer() if self.body is None else self.body).encode()


OK = Reply()
SERVER_ERROR = Reply(status=500, body={"error": "boom"})
TOO_MANY = Reply(status=429, body={"error": "slow down"})
BAD_REQUEST = Reply(status=400, body={"error": "bad ticket"})
MALFORMED_JSON = Reply(raw=b'{"confidence": 0.9, "recommended_')
WRONG_TYPES = Reply(body=good_answer(confidence="very high", solution={"steps": "reboot"}))
UNKNOWN_ACTION = Reply(body=good_answer(recommended_action="reboot_the_router"))


def slow(seconds: float) -> Reply:
    """A good answer, but only after `seconds` (longer than the client's timeout)."""
    return Reply(delay=seconds)


@dataclass
class Received:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAgent:
    """The running fake: its URL, its script, and what it received."""

    url: str = ""
    script: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    # The reply once the script is used up.
    then: Reply = OK
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *replies: Reply, then: Reply = OK) -> None:
        """Set the replies for the next requests, in order; after them, `then` (a good
        answer unless given, e.g. `slow(2)` for an agent that is slow from now on)."""
        with self._lock:
            self.script = list(replies)
            self.then = then

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self.script.pop(0) if self.script else self.then


def _handler(fake: FakeAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            reply = fake._next(Received("POST", self.path, dict(self.headers), body))
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.payload()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timed out) before the slow reply

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output quiet

    return Handler


@contextmanager
def running_fake_agent() -> Iterator[FakeAgent]:
    """Start the fake on 127.0.0.1, a free port; stop it on exit."""
    fake = FakeAgent()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True  # a deliberately slow reply must not hold up teardown
    host, port = str(server.server_address[0]), server.server_address[1]
    fake.url = f"http://{host}:{port}/api/agent/analyze"
    # A short poll interval so shutdown() at teardown does not wait half a second.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
