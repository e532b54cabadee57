"""The background executors are bounded: past their threads and waiting room they take
nothing, and say so, instead of queueing without end."""

from __future__ import annotations

import logging
import threading

import pytest

from bot.core.errors import Busy
from bot.delivery.background import Background
from tests.support.harness import wait_until


@pytest.fixture()
def pool():
    executor = Background(1, queue_limit=1, name="bounded-test")
    gate = threading.Event()
    yield executor, gate
    gate.set()
    executor.shutdown()


def test_past_its_threads_and_waiting_room_it_takes_nothing(pool, caplog):
    executor, gate = pool
    running = executor.submit(gate.wait)
    waiting = executor.submit(lambda: "ran")
    with pytest.raises(Busy) as refused:
        executor.submit(lambda: "never")
    assert refused.value.message == "I'm busy right now, please try again in a minute."
    with caplog.at_level(logging.WARNING):
        assert executor.try_submit(lambda: "never") is None
    assert "bounded-test is full" in caplog.text
    with executor.slot() as slot:
        assert slot is None

    gate.set()
    running.result(timeout=5)
    assert waiting.result(timeout=5) == "ran"
    # Room again once the work is done (its place is given back just after its result).
    assert wait_until(lambda: _submitted(executor, lambda: "again")).result(timeout=5) == "again"


def test_a_slot_holds_a_place_until_used_and_is_given_back_when_not(pool):
    executor, gate = pool
    executor.submit(gate.wait)
    with executor.slot() as slot:
        assert slot is not None
        with pytest.raises(Busy):  # the one waiting place is the slot's
            executor.submit(lambda: None)
    # Not used (the ack failed, say): given back.
    with executor.slot() as slot:
        assert slot is not None
        done = slot.submit(lambda: "in the slot")
        with pytest.raises(RuntimeError):
            slot.submit(lambda: "twice")
    gate.set()
    assert done.result(timeout=5) == "in the slot"


def test_a_slot_is_given_back_when_the_block_raises(pool):
    executor, gate = pool
    executor.submit(gate.wait)
    with pytest.raises(ValueError), executor.slot():
        raise ValueError("the commit failed")
    assert executor.try_submit(lambda: None) is not None


def test_a_failing_task_frees_its_place_and_is_logged(pool, caplog):
    executor, _ = pool

    def fails():
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR):
        for _ in range(5):  # more than the pool holds: each failure gave its place back
            future = wait_until(lambda: _submitted(executor, fails))
            with pytest.raises(RuntimeError):
                future.result(timeout=5)
        wait_until(lambda: caplog.text.count("background work failed") == 5,
                   what="every failure logged")


def _submitted(executor: Background, fn):
    """`fn` submitted in a free place, or None when there is none (yet)."""
    with executor.slot() as slot:
        return slot.submit(fn) if slot is not None else None
