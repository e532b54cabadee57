"""The per-person ticket limit on its own: counting, refusing, failing open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.settings import load_settings
from bot.domain.intake import _too_many
from bot.domain.ratelimit import TicketLimit, make_storage


def _limit(rate: str, url: str | None = None) -> TicketLimit:
    return TicketLimit(load_settings(ticket_rate_limit=rate), make_storage(url), namespace="unit")


def test_each_person_has_their_own_budget_and_a_refusal_says_when():
    limit = _limit("2/hour")
    assert [limit.acquire("UONE").allowed for _ in range(3)] == [True, True, False]
    refused = limit.acquire("UONE")
    assert not refused.allowed and not refused.store_down
    assert refused.retry_at is not None
    assert timedelta(minutes=59) < refused.retry_at - datetime.now(UTC) <= timedelta(hours=1)
    assert limit.acquire("UTWO").allowed


def test_off_counts_nothing():
    limit = TicketLimit(load_settings(ticket_rate_limit="off"), make_storage(None))
    assert limit.item is None
    assert all(limit.acquire("UONE").allowed for _ in range(100))


def test_a_store_down_lets_tickets_through_and_says_so_without_asking_again_at_once():
    limit = _limit("1/hour", "redis://127.0.0.1:1/0")
    first, second = limit.acquire("UONE"), limit.acquire("UONE")
    assert (first.allowed, first.store_down) == (True, True)
    assert (second.allowed, second.store_down) == (True, True)


def test_the_refusal_names_the_limit_and_the_wait():
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    said = _too_many(_limit("5 per 10 minutes"), now + timedelta(minutes=3, seconds=10), now).message
    assert said.startswith("You've reached the limit of 5 tickets per 10 minutes, so I didn't save")
    assert "You can open another in about 4 minutes." in said
    assert "in about 2 hours" in _too_many(_limit("20/day"), now + timedelta(minutes=61), now).message
    assert "in about a minute" in _too_many(_limit("1/hour"), now + timedelta(seconds=5), now).message
    assert "limit of 1 ticket per hour" in _too_many(_limit("1/hour"), None, now).message
