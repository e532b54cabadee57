"""The one clock's sandbox offset (SANDBOX_CLOCK_FILE): "skip ahead" moves the bot's time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine

from bot.core import clock
from bot.core.settings import load_settings


@pytest.fixture(autouse=True)
def no_offset_after() -> Iterator[None]:
    yield
    clock.use_offset_file(None)


@time_machine.travel("2026-11-30 10:00:00+00:00", tick=False)
def test_without_the_setting_the_clock_is_the_real_time() -> None:
    assert load_settings().sandbox_clock_file is None
    clock.use_offset_file(None)
    assert clock.now().isoformat() == "2026-11-30T10:00:00+00:00"
    assert clock.offset() == timedelta(0)


@time_machine.travel("2026-11-30 10:00:00+00:00", tick=False)
def test_skip_ahead_is_seen_at_once_and_a_bad_file_is_no_offset(tmp_path) -> None:
    path = tmp_path / "clock"
    clock.use_offset_file(path)
    assert clock.now().isoformat() == "2026-11-30T10:00:00+00:00"  # no file yet
    clock.write_offset(path, 86400)
    assert clock.now().isoformat() == "2026-12-01T10:00:00+00:00"
    clock.write_offset(path, 2 * 86400)
    os.utime(path, ns=(1, 1))  # seen whatever the file's time says (a new file)
    assert clock.now().isoformat() == "2026-12-02T10:00:00+00:00"
    path.write_text("not a number")
    assert clock.offset() == timedelta(0)


def test_the_setting_reaches_the_clock_through_the_runtime(tmp_path) -> None:
    from bot.workflows.runtime import Runtime

    path = tmp_path / "clock"
    clock.write_offset(path, 3600)
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}", sandbox_clock_file=path)
    Runtime.from_settings(settings).engine.dispose()
    assert clock.offset() == timedelta(hours=1)
