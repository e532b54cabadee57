"""The rollback throttle is one atomic check-and-count: parallel confirms by one admin
never roll back more than ROLLBACK_RATE_LIMIT allows, on PostgreSQL with Redis and on
SQLite with the in-process store; and a refusal spends nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.core.errors import RollbackConflict, Throttled
from bot.domain import audit
from bot.domain.ratelimit import RollbackThrottle, make_storage
from bot.domain.rollback import rollback_action
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    Ticket,
    make_engine,
    make_session_factory,
    transaction,
)
from tests.support.factories import make_action

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
LIMIT = 3
PARALLEL = 8


def _throttle(settings, storage, namespace="resolvemeq") -> RollbackThrottle:
    return RollbackThrottle(settings.model_copy(update={"rollback_rate_limit": f"{LIMIT}/hour"}), storage,
                            namespace=namespace)


def _parallel_rollbacks(factory, throttle, action_ids) -> list[str]:
    """Each action rolled back by the same admin on a thread of its own, all at once."""
    barrier = threading.Barrier(len(action_ids))
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(action_id) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction(factory) as session:
                rollback_action(session, ref=action_id.hex, admin_id="UADMIN", is_admin=True,
                                reason="parallel", throttle=throttle)
            outcome = "rolled back"
        except Throttled:
            outcome = "throttled"
        except Exception as error:  # anything else is a failure the assert shows
            outcome = repr(error)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(action_id,)) for action_id in action_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)


def _check(factory, outcomes, action_ids) -> None:
    assert outcomes == ["rolled back"] * LIMIT + ["throttled"] * (PARALLEL - LIMIT)
    with transaction(factory) as session:
        undone = session.scalar(select(func.count()).select_from(ActionHistory)
                                .where(ActionHistory.id.in_(action_ids), ActionHistory.rolled_back))
        rows = session.scalar(select(func.count()).select_from(ActionHistory)
                              .where(ActionHistory.action_type == ActionType.ROLLBACK))
        denials = session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == audit.ROLLBACK_THROTTLED)).all()
    assert (undone, rows) == (LIMIT, LIMIT)
    assert len(denials) == PARALLEL - LIMIT
    assert {(d.actor_id, d.detail["stage"]) for d in denials} == {("UADMIN", "rollback")}


def test_parallel_confirms_by_one_admin_never_exceed_the_throttle_on_postgres_with_redis(
        committing_factory, settings, redis_url, namespace):
    throttle = _throttle(settings, make_storage(redis_url), namespace)
    with transaction(committing_factory) as session:
        action_ids = [make_action(session, action_type=ActionType.ESCALATE, now=NOW).id
                      for _ in range(PARALLEL)]

    outcomes = _parallel_rollbacks(committing_factory, throttle, action_ids)

    _check(committing_factory, outcomes, action_ids)


def test_parallel_confirms_by_one_admin_never_exceed_the_throttle_on_sqlite_in_memory(sqlite_url, settings):
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    throttle = _throttle(settings, make_storage(None))
    try:
        with transaction(factory) as session:
            action_ids = [make_action(session, action_type=ActionType.ESCALATE, now=NOW).id
                          for _ in range(PARALLEL)]

        outcomes = _parallel_rollbacks(factory, throttle, action_ids)

        _check(factory, outcomes, action_ids)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_refused_rollback_spends_nothing_of_the_budget(backend, session, sqlite_url, settings):
    engine = make_engine(sqlite_url) if backend == "sqlite" else None
    db = make_session_factory(engine)() if engine else session
    throttle = RollbackThrottle(settings.model_copy(update={"rollback_rate_limit": "1/hour"}),
                                make_storage(None))
    try:
        changed = make_action(db, action_type=ActionType.ESCALATE, now=NOW)
        db.get(Ticket, changed.ticket_id).assigned_team = "Desk"  # someone's later work
        db.flush()
        with pytest.raises(RollbackConflict):
            rollback_action(db, ref=changed.id.hex, admin_id="UADMIN", is_admin=True, reason="",
                            throttle=throttle)
        fine = make_action(db, action_type=ActionType.ESCALATE, now=NOW)
        rollback_action(db, ref=fine.id.hex, admin_id="UADMIN", is_admin=True, reason="", throttle=throttle)
        another = make_action(db, action_type=ActionType.ESCALATE, now=NOW)
        with pytest.raises(Throttled):
            rollback_action(db, ref=another.id.hex, admin_id="UADMIN", is_admin=True, reason="",
                            throttle=throttle)
        assert db.get(ActionHistory, another.id).rolled_back is False
    finally:
        if engine:
            db.close()
            engine.dispose()
