"""A threaded loopback TCP proxy, to take one server's PostgreSQL, Redis or Slack "down".

The server under test is pointed at the proxy instead of the real service; the test
then `cut()`s it and `restore()`s it, and the shared service itself is never touched
(other servers and other test runs keep using it). Example::

    with TcpProxy("127.0.0.1", 5432) as pg:
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{pg.port}/mydb"
        ...
        pg.cut()        # every open connection closed, new ones refused
        ...
        pg.restore()    # connections go through again (same port)

`cut(mode=...)` says what a new connection meets while cut:

- ``"refuse"`` (default): the listening socket is closed, so the client gets
  ECONNREFUSED, as when the service is not running. `restore()` listens again on the
  same port.
- ``"reset"``: the connection is accepted and reset at once (RST), as when a
  firewall or a crashed service resets it.
- ``"blackhole"``: the connection is accepted and then nothing ever answers, as when
  packets are dropped; the client waits for its own timeout.

Every thread the proxy starts is joined by `stop()`.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Iterable

FORWARD = "forward"
REFUSE = "refuse"
RESET = "reset"
BLACKHOLE = "blackhole"
_MODES = (REFUSE, RESET, BLACKHOLE)
_POLL = 0.02  # seconds between looks at the state while idle
_CHUNK = 65536


def _close(sockets: Iterable[socket.socket], *, reset: bool = False) -> None:
    for sock in sockets:
        try:
            if reset:
                # SO_LINGER on, 0 s: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass


class _Link:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self._done = 0
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True,
                             name="tcp-proxy-pump"),
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True,
                             name="tcp-proxy-pump"),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        _close((self.client, self.upstream))

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        try:
            target.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:
            pass
        with self._lock:
            self._done += 1
            last = self._done == 2
        if last:
            self.close()
            self.proxy._forget(self)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target_host:target_port`` until cut.

    Args:
        target_host: where connections are forwarded.
        target_port: the target's port.
        connect_timeout: seconds to reach the target for each new connection.
    """

    def __init__(self, target_host: str, target_port: int, *, connect_timeout: float = 5.0) -> None:
        self.target = (target_host, int(target_port))
        self.connect_timeout = connect_timeout
        self.port = 0
        self.accepted = 0  # connections accepted in any state
        self.forwarded = 0  # connections forwarded to the target
        self._state = FORWARD
        self._cond = threading.Condition()
        self._links: set[_Link] = set()
        self._held: list[socket.socket] = []  # blackholed connections
        self._listener: socket.socket | None = None
        self._listening = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._finished_threads: list[threading.Thread] = []

    # ----- lifecycle ---------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Listen on 127.0.0.1 (an OS-assigned port) and start forwarding; returns self."""
        if self._thread is not None:
            return self
        self._listener = self._bind(0)
        self.port = self._listener.getsockname()[1]
        self._listening = True
        self._thread = threading.Thread(target=self._serve, name="tcp-proxy-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close everything and join every thread the proxy started (safe to call twice)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._drop_connections()
        for thread in self._finished_threads:
            thread.join(timeout=5)
        self._finished_threads.clear()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, for building the URL the server under test gets."""
        return f"127.0.0.1:{self.port}"

    @property
    def state(self) -> str:
        """``forward``, or the mode of the current cut."""
        with self._cond:
            return self._state

    @property
    def open_connections(self) -> int:
        with self._cond:
            return len(self._links) + len(self._held)

    # ----- faults --------------------------------------------------------------------

    def cut(self, mode: str = REFUSE) -> None:
        """Close every connection; until `restore()`, new ones meet `mode`.

        Returns once the cut is in force (for ``"refuse"``: the port is closed).
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, not {mode!r}")
        with self._cond:
            self._state = mode
            self._cond.notify_all()
            if mode == REFUSE:
                self._wait(lambda: not self._listening)
        self._drop_connections()

    def restore(self) -> None:
        """Forward new connections again, on the same port; returns once listening."""
        with self._cond:
            self._state = FORWARD
            self._cond.notify_all()
            self._wait(lambda: self._listening)
            held, self._held = self._held, []
        _close(held)

    # ----- internals -------------------------------------------------------------------

    def _wait(self, predicate) -> None:
        if not self._cond.wait_for(lambda: predicate() or self._stopping, timeout=5):
            raise RuntimeError(f"tcp proxy on port {self.port} did not change state in time")
        if self._listen_error is not None:
            raise RuntimeError(f"tcp proxy could not listen on port {self.port} again: "
                               f"{self._listen_error}")

    _listen_error: OSError | None = None

    @staticmethod
    def _bind(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        return listener

    def _serve(self) -> None:
        # This thread alone opens and closes the listening socket, so no other thread
        # ever waits on a descriptor that was closed (and perhaps reused) under it.
        while True:
            with self._cond:
                stopping, state = self._stopping, self._state
                if (stopping or state == REFUSE) and self._listener is not None:
                    self._listener.close()
                    self._listener, self._listening = None, False
                    self._cond.notify_all()
                elif not stopping and state != REFUSE and self._listener is None:
                    try:
                        self._listener = self._bind(self.port)
                        self._listening, self._listen_error = True, None
                    except OSError as error:  # someone took the port meanwhile
                        self._listen_error = error
                        self._listening = True  # unblock restore(), which raises
                    self._cond.notify_all()
                listener = self._listener
                if stopping:
                    return
                if listener is None:
                    self._cond.wait(_POLL)
                    continue
            readable, _, _ = select.select([listener], [], [], _POLL)
            if not readable:
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                continue
            self._handle(client)

    def _handle(self, client: socket.socket) -> None:
        with self._cond:
            self.accepted += 1
            state = self._state
            if state == BLACKHOLE:
                self._held.append(client)
                return
        if state == RESET:
            _close([client], reset=True)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
            upstream.settimeout(None)
        except OSError:
            _close([client], reset=True)
            return
        link = _Link(self, client, upstream)
        with self._cond:
            if self._state != FORWARD or self._stopping:  # cut while we connected
                _close([client, upstream])
                return
            self.forwarded += 1
            self._links.add(link)
            self._finished_threads.extend(link.threads)
        link.start()

    def _forget(self, link: _Link) -> None:
        with self._cond:
            self._links.discard(link)

    def _drop_connections(self) -> None:
        with self._cond:
            links, self._links = list(self._links), set()
            held, self._held = self._held, []
        for link in links:
            link.close()
        _close(held)
        for link in links:
            for thread in link.threads:
                thread.join(timeout=5)
