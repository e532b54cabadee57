"""The Redis transport `serve` publishes decisions with: kombu's own, keeping one Redis
client per channel instead of building one for every message.

kombu's Redis channel wraps its connection pool in a new `redis.Redis` for each message
it puts (`conn_or_acquire`); on the request thread of a `/ticket` that cost about as much
CPU as the LPUSH it sends (docs/BENCHMARKS.md, "Ack CPU"). The client holds no
connection of its own (each command takes one from the pool and gives it back) and is
safe to share between threads, so one per channel, over the same pool, sends the same
commands. Used by the publishing side only (`jobs.dispatch.CeleryDecisions`); the
workers keep kombu's transport as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

# What `broker_transport` names (kombu resolves "module:Class").
TRANSPORT = "jobs.publisher:Transport"


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._shared_client
        # A channel that dropped its pool (closed, reconnected) gets a client on the new one.
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()  # type: ignore[attr-defined]
        yield shared


class Transport(kombu_redis.Transport):
    Channel = Channel
