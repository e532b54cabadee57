"""An HTTP server on 127.0.0.1 at a port the OS picks (or a given one), served from a
daemon thread.

The stand-ins for Slack (the tests' and the sandbox's) and the tests' Sentry share this
lifecycle: `start()` (or `with`),
`port`, and `stop()`, which is safe to call twice.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class QuickServer(ThreadingHTTPServer):
    daemon_threads = True  # a deliberately slow answer must not block stop()


class LoopbackHTTPServer:
    """Subclasses give `_handler_class()`, and may set `server_class`."""

    server_class: type[ThreadingHTTPServer] = QuickServer
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    bind_port = 0  # 0: the OS picks a free port

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        """Bind 127.0.0.1:0 and serve from a daemon thread; returns self."""
        if self._server is None:
            self._server = self.server_class(("127.0.0.1", self.bind_port), self._handler_class())
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (safe to call twice)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_address[1]
