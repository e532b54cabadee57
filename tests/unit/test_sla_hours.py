"""Business time for SLA clocks (BUSINESS_HOURS) and the settings that set it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.settings import SettingsError, load_settings, parse_business_hours
from bot.domain.sla import business_seconds
from bot.views.sla import duration

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = parse_business_hours("Mon-Fri 09:00-18:00 Europe/Berlin")


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


def test_a_weekend_and_the_nights_do_not_count():
    # Friday 17:00 to Monday 10:00: an hour on Friday, an hour on Monday.
    assert business_seconds(_at(2026, 11, 27, 17), _at(2026, 11, 30, 10), HOURS) == 2 * 3600


def test_before_opening_counts_from_opening_and_a_span_inside_a_day_counts_whole():
    assert business_seconds(_at(2026, 11, 30, 7), _at(2026, 11, 30, 9, 30), HOURS) == 1800
    assert business_seconds(_at(2026, 11, 30, 10), _at(2026, 11, 30, 10, 45), HOURS) == 2700
    assert business_seconds(_at(2026, 11, 30, 19), _at(2026, 12, 1, 8), HOURS) == 0


def test_hours_are_read_in_the_zone_across_a_clock_change():
    # 2026-03-29 is the Sunday Berlin moves to summer time: Friday to Monday is still
    # the last hour of Friday and the first of Monday, 09:00-10:00 local = 07:00-08:00 UTC.
    start = datetime(2026, 3, 27, 16, 0, tzinfo=UTC)  # 17:00 CET
    end = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # 10:00 CEST
    assert business_seconds(start, end, HOURS) == 2 * 3600


def test_without_business_hours_every_second_counts():
    start = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert business_seconds(start, start + timedelta(hours=30), None) == 30 * 3600


def test_settings_read_targets_and_hours_and_refuse_bad_ones_in_one_line():
    settings = load_settings(database_url="sqlite://", sla_targets="high=30m/8h",
                             business_hours="Fri-Mon 08:30-17:00 America/New_York")
    assert settings.sla_targets["high"] == (timedelta(minutes=30), timedelta(hours=8))
    assert settings.sla_targets["critical"] == (timedelta(minutes=15), timedelta(hours=4))  # default kept
    assert settings.business_hours is not None
    assert settings.business_hours.days == {4, 5, 6, 0} and settings.business_hours.opens == 510
    assert load_settings(database_url="sqlite://").business_hours is None
    for name, value, said in [
        ("sla_targets", "urgent=1h/2h", "SLA_TARGETS='urgent=1h/2h' is invalid: unknown priority 'urgent'"),
        ("sla_targets", "high=2h/1h", "SLA_TARGETS='high=2h/1h' is invalid: high: the first response"),
        ("sla_targets", "high=1h", "SLA_TARGETS='high=1h' is invalid: expected priority=response/resolution"),
        ("business_hours", "Mon-Fri 18:00-09:00 UTC", "BUSINESS_HOURS='Mon-Fri 18:00-09:00 UTC' is invalid"),
        ("business_hours", "Mon-Fri 09:00-18:00 Mars/Base", "unknown time zone 'Mars/Base'"),
    ]:
        with pytest.raises(SettingsError) as raised:
            load_settings(database_url="sqlite://", **{name: value})
        assert said in str(raised.value) and "\n" not in str(raised.value)


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (None, 40, 45 * 60, 3 * 3600 + 20 * 60, 2 * 86400 + 4 * 3600, 86400)] == [
        "-", "40s", "45m", "3h 20m", "2d 4h", "1d"]
