"""`GET /healthz`: can this process reach its database (and Redis, when configured)?"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)


def check(engine: Engine, redis_url: str | None) -> tuple[bool, dict[str, str]]:
    """Returns (healthy, {"db": "ok" | "error", "broker": ...})."""
    report: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        report["db"] = "ok"
    except Exception as error:
        log.warning("health: database unreachable (%s)", type(error).__name__)
        report["db"] = "error"
    if redis_url:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # No retries: a health check that waits through backoff is not answering.
            redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1,
                                 retry=Retry(NoBackoff(), 0)).ping()
            report["broker"] = "ok"
        except Exception as error:
            log.warning("health: redis unreachable (%s)", type(error).__name__)
            report["broker"] = "error"
    return all(v == "ok" for v in report.values()), report
