"""The circuit breaker: closed -> open -> half-open -> closed/open, on the one clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from bot.agent.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RESET = timedelta(seconds=60)


@pytest.fixture()
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def opened(threshold: int = 3) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=threshold, reset_timeout=RESET)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.record_failure()
    return breaker


def test_starts_closed_and_lets_calls_through(clock):
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=RESET)
    assert breaker.state == CLOSED
    assert breaker.allow() and breaker.allow()
    assert breaker.retry_at() is None


def test_opens_on_the_threshold_not_before(clock):
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=RESET)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    assert not breaker.allow()
    assert breaker.retry_at() == START + RESET


def test_only_consecutive_failures_count(clock):
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=RESET)
    for _ in range(5):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state == CLOSED and breaker.failures == 0


def test_stays_open_until_the_reset_timeout(clock):
    breaker = opened()
    clock.shift(RESET - timedelta(seconds=1))
    assert breaker.state == OPEN and not breaker.allow()
    clock.shift(timedelta(seconds=1))
    assert breaker.state == HALF_OPEN


def test_half_open_lets_exactly_one_trial_through(clock):
    breaker = opened()
    clock.shift(RESET)
    assert breaker.allow()
    assert not breaker.allow()
    assert not breaker.allow()


def test_a_successful_trial_closes_the_circuit(clock):
    breaker = opened()
    clock.shift(RESET)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.failures == 0
    assert breaker.allow() and breaker.allow()


def test_a_failed_trial_reopens_for_a_full_timeout(clock):
    breaker = opened()
    clock.shift(RESET + timedelta(seconds=5))
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    clock.shift(RESET - timedelta(seconds=1))
    assert not breaker.allow()
    clock.shift(timedelta(seconds=1))
    assert breaker.allow()


def test_a_trial_that_never_reports_frees_its_slot_later(clock):
    breaker = opened()
    clock.shift(RESET)
    assert breaker.allow()  # this caller crashes and never reports
    clock.shift(RESET - timedelta(seconds=1))
    assert not breaker.allow()
    clock.shift(timedelta(seconds=1))
    assert breaker.allow()


def test_a_late_failure_does_not_push_reopening_back(clock):
    breaker = opened()
    clock.shift(timedelta(seconds=30))
    breaker.record_failure()  # a call started before the circuit opened
    clock.shift(timedelta(seconds=30))
    assert breaker.state == HALF_OPEN


def test_one_failure_threshold_opens_at_once(clock):
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=RESET)
    breaker.record_failure()
    assert breaker.state == OPEN


def test_concurrent_failures_are_all_counted():
    breaker = CircuitBreaker(failure_threshold=10_000, reset_timeout=RESET)

    def fail() -> None:
        for _ in range(500):
            breaker.record_failure()

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.failures == 4000


def test_concurrent_callers_get_a_single_half_open_trial(clock):
    breaker = opened()
    clock.shift(RESET)
    barrier = threading.Barrier(16)
    allowed: list[bool] = []

    def call() -> None:
        barrier.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"reset_timeout": timedelta(0)},
        {"reset_timeout": timedelta(seconds=-1)},
    ],
)
def test_rejects_nonsense_configuration(kwargs):
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)
