"""Redraws of one Slack message happen one at a time, also across serve processes."""

from __future__ import annotations

import threading
import time

from bot.delivery.message_locks import MessageLocks
from tests.support.harness import free_port

KEY = ("CHELP", "1732527000.000100")


def _record_holds(locks: MessageLocks, name: str, key, events: list, hold_for: float = 0.3):
    with locks.hold(key):
        events.append(f"{name} in")
        time.sleep(hold_for)
        events.append(f"{name} out")


def test_two_processes_redraw_one_message_one_after_the_other(redis_url, namespace):
    # Two MessageLocks on one Redis are what two serve processes have.
    first, second = MessageLocks(redis_url, namespace=namespace), MessageLocks(redis_url, namespace=namespace)
    events: list[str] = []
    a = threading.Thread(target=_record_holds, args=(first, "a", KEY, events))
    a.start()
    time.sleep(0.1)
    _record_holds(second, "b", KEY, events)
    a.join()
    assert events == ["a in", "a out", "b in", "b out"]


def test_different_messages_do_not_wait_for_each_other(redis_url, namespace):
    first, second = MessageLocks(redis_url, namespace=namespace), MessageLocks(redis_url, namespace=namespace)
    events: list[str] = []
    a = threading.Thread(target=_record_holds, args=(first, "a", KEY, events))
    a.start()
    time.sleep(0.1)
    _record_holds(second, "b", ("CHELP", "1732527000.000200"), events, hold_for=0)
    a.join()
    assert events == ["a in", "b in", "b out", "a out"]


def test_redis_down_still_redraws_and_keeps_order_within_a_process(namespace):
    locks = MessageLocks(f"redis://127.0.0.1:{free_port()}/0", namespace=namespace)
    events: list[str] = []
    a = threading.Thread(target=_record_holds, args=(locks, "a", KEY, events))
    a.start()
    time.sleep(0.1)
    _record_holds(locks, "b", KEY, events, hold_for=0)
    a.join()
    assert events == ["a in", "a out", "b in", "b out"]


def test_a_lock_left_by_a_dead_process_is_waited_for_only_so_long(redis_url, namespace):
    import redis

    left = redis.Redis.from_url(redis_url).lock(f"{namespace}:message:{KEY[0]}:{KEY[1]}", timeout=30)
    assert left.acquire(blocking=False)
    try:
        locks = MessageLocks(redis_url, namespace=namespace, wait=0.5)
        started = time.monotonic()
        with locks.hold(KEY):
            waited = time.monotonic() - started
        assert 0.4 < waited < 3
    finally:
        left.release()
