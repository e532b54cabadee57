"""Load generators: many signed Slack requests at a server, and what came back.

- `open_loop()`: requests fall due at a fixed rate whatever the answers' pace.
  Latency is measured from the moment a request was *due*, so a stalled server cannot
  hide its queue (no coordinated omission); `lag` says how late the generator itself was.
- `closed_loop()`: N connections each send the next request when the last is answered
  (the most a server will do).
- `burst()`: every request on its own new connection, released together (as when many
  people click at once).

Threads, one keep-alive `http.client` connection per thread, loopback only, bounded in
count and time. Each run also says how busy the machine was (`procstat.Load`).
"""

from __future__ import annotations

import http.client
import itertools
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.machine import loadavg
from bench.mix import Mix, Request
from bench.procstat import Load
from bot.sandbox import signing
from tests.support.harness import SIGNING_SECRET

SLACK_DEADLINE = 3.0  # Slack shows an error if the ack takes longer
CLIENT_TIMEOUT = 10.0


@dataclass
class Sample:
    """One request's outcome."""

    kind: str
    status: int  # 0: no answer (connection error or timeout)
    latency: float  # seconds from the scheduled send to the last byte of the answer
    lag: float  # seconds the generator sent late
    # A click that changes the answer: its message's ts, and when (time.time(), the fake
    # Slack's clock) it was sent and answered, to find when the message was redrawn.
    redraw_ts: str = ""
    sent_at: float = 0.0
    answered_at: float = 0.0


@dataclass
class Run:
    """One load run: its samples and how busy the machine was meanwhile."""

    label: str
    samples: list[Sample] = field(default_factory=list)
    elapsed: float = 0.0
    scheduled: int = 0  # requests the run meant to send
    busy_cores: float = 0.0
    load1: float = 0.0
    others: float = 0.0  # cores used by processes that are not this benchmark's nor the services
    services: float = 0.0  # cores used by PostgreSQL and Redis
    other_names: list[str] = field(default_factory=list)
    # A closed loop's requests taken from the mix and never sent (`Mix.give_back`).
    unsent: list[Request] = field(default_factory=list)

    def took_load(self, load: Load) -> None:
        load.measure()
        self.busy_cores, self.others, self.services = load.busy, load.others, load.services
        self.other_names = load.other_names

    def summary(self, kind: str | None = None) -> dict[str, float]:
        """Counts, throughput and latency percentiles (seconds) of the run, or of one kind
        of request; `failed` counts requests never sent or answered other than 200."""
        chosen = [s for s in self.samples if kind is None or s.kind == kind]
        ok = sorted(s.latency for s in chosen if s.status == 200)
        lags = sorted(s.lag for s in chosen)
        failed = sum(1 for s in chosen if s.status != 200)
        late = sum(1 for s in chosen if s.status == 200 and s.latency > SLACK_DEADLINE)
        return {
            "sent": len(chosen),
            "ok": len(ok),
            "failed": failed + (self.scheduled - len(self.samples) if kind is None else 0),
            "late": late,
            "throughput": len(ok) / self.elapsed if self.elapsed else 0.0,
            "p50": percentile(ok, 50),
            "p95": percentile(ok, 95),
            "p99": percentile(ok, 99),
            "max": ok[-1] if ok else float("nan"),
            "lag_p99": percentile(lags, 99),
        }


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (nan when empty)."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class _Client:
    """One keep-alive connection; reconnects once when the server closed an idle one."""

    def __init__(self, port: int, secret: str) -> None:
        self._port, self._secret = port, secret
        self._conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> int:
        for attempt in (0, 1):
            fresh = self._conn is None
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=CLIENT_TIMEOUT)
            conn = self._conn
            ts = int(time.time())
            headers = {
                "Content-Type": request.content_type,
                "X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": signing.signature(self._secret, request.body, ts),
            }
            try:
                conn.request("POST", "/slack/events", body=request.body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    self.close()
                return response.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh or attempt:  # not a stale keep-alive connection: a real failure
                    return 0
            except (OSError, http.client.HTTPException):
                self.close()
                return 0
        return 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def open_loop(label: str, port: int, requests: Sequence[Request], *, rate: float,
              workers: int = 64, secret: str = SIGNING_SECRET, ours: set[int] | None = None) -> Run:
    """Send `requests` at `rate` per second whatever the answers' pace (open loop).

    A request is due at start + i/rate; a pool of `workers` threads sends each as it
    falls due. Bounded: len(requests) sends, then at most CLIENT_TIMEOUT for the last.
    """
    run = Run(label, scheduled=len(requests), load1=loadavg()[0])
    due: queue.Queue = queue.Queue()
    lock = threading.Lock()
    load = Load(ours)
    start = time.monotonic() + 0.05
    finish = [start]

    def work() -> None:
        client = _Client(port, secret)
        try:
            while True:
                item = due.get()
                if item is None:
                    return
                scheduled, request = item
                began, sent_at = time.monotonic(), time.time()
                status = client.send(request)
                ended = time.monotonic()
                with lock:
                    run.samples.append(Sample(request.kind, status, ended - scheduled, began - scheduled,
                                              request.redraw_ts, sent_at - (began - scheduled),
                                              time.time()))
                    finish[0] = max(finish[0], ended)
        finally:
            client.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for i, request in enumerate(requests):
        at = start + i / rate
        pause = at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        due.put((at, request))
    for _ in threads:
        due.put(None)
    hard_stop = time.monotonic() + CLIENT_TIMEOUT + 5
    for thread in threads:
        thread.join(max(0.0, hard_stop - time.monotonic()))
    run.elapsed = finish[0] - start
    run.took_load(load)
    return run


def closed_loop(label: str, port: int, mix: Mix, *, concurrency: int, seconds: float,
                max_requests: int = 100_000, secret: str = SIGNING_SECRET,
                ours: set[int] | None = None) -> Run:
    """`concurrency` threads each send the next request as soon as the last is answered,
    for `seconds` (or `max_requests` in all): the most the server will do."""
    requests = mix.take(min(max_requests, int(seconds * 2000)))
    run = Run(label, scheduled=0, load1=loadavg()[0])
    index = itertools.count()
    lock = threading.Lock()
    load = Load(ours)
    start = time.monotonic()
    deadline = start + seconds

    def work() -> None:
        client = _Client(port, secret)
        try:
            while time.monotonic() < deadline:
                i = next(index)
                if i >= len(requests):
                    return
                began, sent_at = time.monotonic(), time.time()
                status = client.send(requests[i])
                ended = time.monotonic()
                with lock:
                    run.samples.append(Sample(requests[i].kind, status, ended - began, 0.0,
                                              requests[i].redraw_ts, sent_at, time.time()))
        finally:
            client.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + CLIENT_TIMEOUT + 5)
    run.elapsed = time.monotonic() - start
    run.scheduled = len(run.samples)
    # Indexes are handed out in order and each taken one is sent: the rest never was.
    run.unsent = list(requests[len(run.samples):])
    run.took_load(load)
    return run


def burst(label: str, port: int, requests: Sequence[Request], *,
          secret: str = SIGNING_SECRET, ours: set[int] | None = None) -> Run:
    """Every request on its own thread and its own new connection, released together
    (as when many people click at once): Slack opens connections as it needs them."""
    run = Run(label, scheduled=len(requests), load1=loadavg()[0])
    gate = threading.Barrier(len(requests) + 1)
    lock = threading.Lock()
    load = Load(ours)

    def work(request: Request) -> None:
        client = _Client(port, secret)
        try:
            gate.wait(30)
            began = time.monotonic()
            status = client.send(request)
            ended = time.monotonic()
            with lock:
                run.samples.append(Sample(request.kind, status, ended - began, 0.0))
        except threading.BrokenBarrierError:
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in requests]
    for thread in threads:
        thread.start()
    start = time.monotonic()
    gate.wait(30)
    for thread in threads:
        thread.join(CLIENT_TIMEOUT + 5)
    run.elapsed = time.monotonic() - start
    run.took_load(load)
    return run
