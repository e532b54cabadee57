"""The embedded scheduler: periodic jobs on a thread of the serving process.

Without REDIS_URL there is no Celery; `serve` runs the same job pass as beat would.
"""

from __future__ import annotations

import threading

from slack_sdk import WebClient

from bot.workflows.periodic import run_once
from bot.workflows.runtime import Runtime


class EmbeddedScheduler:
    """Runs `run_once` every JOB_INTERVAL on a daemon thread (no REDIS_URL, no Celery)."""

    def __init__(self, runtime: Runtime, client: WebClient):
        self._runtime, self._client = runtime, client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="resolvemeq-jobs", daemon=True)

    def start(self) -> EmbeddedScheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        interval = self._runtime.settings.job_interval.total_seconds()
        while not self._stop.wait(interval):
            run_once(self._runtime, self._client)
