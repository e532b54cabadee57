"""A fake Sentry ingest on loopback that records every envelope it is sent.

A process started with ``SENTRY_DSN=fake.dsn`` sends its events here over HTTP,
through the real sentry_sdk transport (its queue, its gzip, its auth header), so a
test can read exactly what would have left the machine::

    with FakeSentry() as sentry:
        env = {"SENTRY_DSN": sentry.dsn}
        ...
        sentry.wait_for(lambda e: "KeyError" in e.text)
        assert "xoxb-" not in sentry.text()

Only ``POST /api/<project>/envelope/`` is accepted (gzip, deflate or plain bodies);
anything else is a 404 and recorded nowhere.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from bot.sandbox.loopback import LoopbackHTTPServer

_ENVELOPE_PATH = re.compile(r"^/api/(\d+)/envelope/?$")


@dataclass(frozen=True)
class Item:
    """One envelope item: its header and its payload (JSON-decoded when it is JSON)."""

    header: dict[str, Any]
    raw: bytes

    @property
    def type(self) -> str:
        return str(self.header.get("type", ""))

    @property
    def payload(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError:
            return None


@dataclass(frozen=True)
class Envelope:
    """One envelope as received: the project, the request headers, the decoded body."""

    project: str
    headers: dict[str, str]
    body: bytes
    header: dict[str, Any] = field(default_factory=dict)
    items: tuple[Item, ...] = ()

    @property
    def text(self) -> str:
        """Everything in it, headers included, as text (what a secret scan reads)."""
        shown = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return shown + "\n" + self.body.decode("utf-8", "replace")

    def events(self) -> list[dict[str, Any]]:
        """The error/message events it carries (not transactions, sessions, ...)."""
        return [item.payload for item in self.items
                if item.type == "event" and isinstance(item.payload, dict)]


def parse_envelope(body: bytes) -> tuple[dict[str, Any], tuple[Item, ...]]:
    """Split a Sentry envelope into its header and items.

    Each item is a JSON header line, then `length` bytes (or one line when the header
    has no length).
    """
    first, _, rest = body.partition(b"\n")
    header = json.loads(first) if first.strip() else {}
    items: list[Item] = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        item_header = json.loads(line)
        length = item_header.get("length")
        if isinstance(length, int):
            payload, rest = rest[:length], rest[length:]
            if rest.startswith(b"\n"):
                rest = rest[1:]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append(Item(item_header, payload))
    return header, tuple(items)


def _decode(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding in ("", "identity"):
        return raw
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class FakeSentry(LoopbackHTTPServer):
    """The fake ingest: ``127.0.0.1`` on an OS-assigned port.

    Args:
        public_key: the DSN's public key (any string; checked against X-Sentry-Auth).
        project: the DSN's project id.
    """

    def __init__(self, *, public_key: str = "publickey", project: str = "1") -> None:
        self.public_key, self.project = public_key, project
        self._cond = threading.Condition()
        self._envelopes: list[Envelope] = []
        self.rejected: list[str] = []  # why a request to the envelope path was not recorded

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@127.0.0.1:{self.port}/{self.project}"

    # ----- what was received -----------------------------------------------------------

    def envelopes(self) -> list[Envelope]:
        with self._cond:
            return list(self._envelopes)

    def events(self) -> list[dict[str, Any]]:
        """Every error/message event received, oldest first."""
        return [event for envelope in self.envelopes() for event in envelope.events()]

    def text(self) -> str:
        """Every envelope received, decoded, as one text."""
        return "\n".join(envelope.text for envelope in self.envelopes())

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *, count: int = 1,
                 timeout: float = 10) -> list[dict[str, Any]]:
        """Block until `count` events satisfy `predicate`; returns them.

        Raises:
            AssertionError: on timeout, saying what was received.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for env in self._envelopes for e in env.events() if predicate(e)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [_summary(e) for env in self._envelopes for e in env.events()]
                    raise AssertionError(f"expected {count} matching Sentry event(s) in "
                                         f"{timeout}s; received {seen}")
                self._cond.wait(remaining)

    def reset(self) -> None:
        with self._cond:
            self._envelopes.clear()
            self.rejected.clear()

    def _record(self, envelope: Envelope) -> None:
        with self._cond:
            self._envelopes.append(envelope)
            self._cond.notify_all()

    def _reject(self, why: str) -> None:
        with self._cond:
            self.rejected.append(why)


def _summary(event: dict[str, Any]) -> str:
    values = (event.get("exception") or {}).get("values") or []
    if values:
        return f"{values[-1].get('type')}: {values[-1].get('value')}"
    message = event.get("message") or (event.get("logentry") or {}).get("message")
    return str(message)[:120]


def _handler(fake: FakeSentry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            match = _ENVELOPE_PATH.match(self.path.split("?")[0])
            if not match:
                return self._send(404, {"detail": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = _decode(raw, headers.get("content-encoding", ""))
                header, items = parse_envelope(body)
            except (ValueError, OSError, EOFError, zlib.error) as error:
                fake._reject(f"{type(error).__name__}: {error}")
                return self._send(400, {"detail": "bad envelope"})
            auth = headers.get("x-sentry-auth", "")
            if f"sentry_key={fake.public_key}" not in auth and fake.public_key not in str(
                    header.get("dsn", "")):
                fake._reject("wrong or missing key")
                return self._send(401, {"detail": "bad key"})
            fake._record(Envelope(match.group(1), headers, body, header, items))
            return self._send(200, {"id": header.get("event_id")})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass

    return Handler
