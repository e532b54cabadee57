"""A ticket's service level as /history shows it: met, breached, running, warned."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from bot.views.sla import ticket_sla_blocks
from tests.support.harness import shown

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _row(**fields):
    base = dict(priority="high", team="Network", response_target_s=3600, resolution_target_s=86400,
                response_s=None, resolution_s=None, elapsed_s=0, response_warned_at=None,
                response_breached_at=None, resolution_warned_at=None, resolution_breached_at=None,
                updated_at=NOW)
    return SimpleNamespace(**{**base, **fields})


def _said(row) -> str:
    return shown({"blocks": [block.to_dict() for block in ticket_sla_blocks(row)]})


def test_each_target_says_met_breached_or_how_much_is_left():
    running = _said(_row(elapsed_s=1200))
    assert "First response: running, due in 40m (20m of 1h used)" in running
    assert "Resolution: running, due in 23h 40m (20m of 1d used)" in running
    warned = _said(_row(elapsed_s=3000, response_warned_at=NOW))
    assert ":hourglass_flowing_sand: First response: over 80% used, due in 10m" in warned
    late = _said(_row(elapsed_s=5400, response_breached_at=NOW))
    assert ":rotating_light: First response: breached, still open (1h 30m of 1h used)" in late
    done = _said(_row(response_s=600, resolution_s=90000, elapsed_s=90000,
                      resolution_breached_at=NOW))
    assert ":white_check_mark: First response: met in 10m (target 1h)" in done
    assert ":rotating_light: Resolution: breached, took 1d 1h (target 1d)" in done
    assert "not measured yet" in _said(None)
