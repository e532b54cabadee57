"""THRESHOLD_EXPERIMENT without a database: the setting, the arms' hash, the test's
verdict and its words."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest

from bot.core.settings import SettingsError, load_settings
from bot.domain.experiment_stats import ArmFigures, Verdict, compare
from bot.domain.experiments import Experiment, arm_index, arm_of
from bot.views.experiment import results_blocks, verdict_text

STARTED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
EXPERIMENT = Experiment(id=7, arms=(0.75, 0.85), started_at=STARTED)


def _load(value: str):
    return load_settings(database_url="sqlite://", threshold_experiment=value)


def test_the_setting_reads_the_arms_in_order():
    assert _load("0.85, 0.75").threshold_experiment == (0.85, 0.75)
    assert _load("").threshold_experiment == ()
    assert _load("0.75,0.85,1").threshold_experiment == (0.75, 0.85, 1.0)


@pytest.mark.parametrize(("value", "said"), [
    ("0.75", "one threshold compares nothing"),
    ("0.75,0.75", "0.75 is named twice"),
    ("0.75,high", "'high' is not a number"),
    ("0.2,0.8", "0.2 is outside (0.3, 1]"),
    ("0.8,1.5", "1.5 is outside (0.3, 1]"),
    ("0.3,0.8", "0.3 is outside (0.3, 1]"),
])
def test_a_bad_setting_is_refused_at_startup_with_a_clear_message(value, said):
    with pytest.raises(SettingsError) as refused:
        _load(value)
    assert str(refused.value).startswith(f"THRESHOLD_EXPERIMENT={value!r} is invalid: ")
    assert said in str(refused.value)


def test_the_lower_bound_follows_low_confidence_threshold():
    assert load_settings(database_url="sqlite://", low_confidence_threshold=0.1,
                         medium_confidence_threshold=0.2, threshold_experiment="0.2,0.8").threshold_experiment
    with pytest.raises(SettingsError, match=r"0.5 is outside \(0.5, 1\]"):
        load_settings(database_url="sqlite://", low_confidence_threshold=0.5, medium_confidence_threshold=0.6,
                      threshold_experiment="0.5,0.8")


def test_a_ticket_keeps_its_arm_in_another_process():
    ids = list(range(1, 200))
    here = [arm_of(EXPERIMENT, ticket).threshold for ticket in ids]
    # A new interpreter with another hash seed: Python's hash() would differ, sha256 does not.
    code = ("from datetime import datetime, UTC\n"
            "from bot.domain.experiments import Experiment, arm_of\n"
            "e = Experiment(7, (0.75, 0.85), datetime.now(UTC))\n"
            f"print(','.join(str(arm_of(e, t).threshold) for t in {ids!r}))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PYTHONPATH": sys.path[0] or "."}).stdout
    assert [float(x) for x in there.strip().split(",")] == here
    # Pinned: a change of the hash would move running experiments' tickets between arms.
    assert [arm_index(t, 7, 2) for t in range(1, 11)] == [1, 0, 1, 1, 1, 0, 0, 1, 0, 0]
    assert {arm_of(EXPERIMENT, 42) for _ in range(5)} == {arm_of(EXPERIMENT, 42)}


def test_arms_are_about_evenly_spread_and_differ_between_experiments():
    counts = Counter(arm_index(ticket, 7, 2) for ticket in range(1, 10_001))
    assert all(4_800 <= n <= 5_200 for n in counts.values()), counts
    three = Counter(arm_index(ticket, 7, 3) for ticket in range(1, 9_001))
    assert all(2_800 <= n <= 3_200 for n in three.values()), three
    other = [arm_index(ticket, 8, 2) for ticket in range(1, 1_001)]
    same = sum(a == b for a, b in zip([arm_index(t, 7, 2) for t in range(1, 1_001)], other, strict=True))
    assert 400 <= same <= 600  # independent between experiments, not the same split again


def _arm(threshold, reopened, answered):
    return ArmFigures(threshold, tickets=answered, decisions=answered, autonomous=answered,
                      confirmed=answered - reopened, reopened=reopened)


def test_the_verdict_changes_with_the_data():
    few = compare(_arm(0.75, 5, 20), _arm(0.85, 1, 29))
    assert few.verdict == Verdict.NOT_ENOUGH and few.p_value is None
    assert verdict_text(few, min_answered=30) == (
        "not enough data yet (0.75: 20 answered, 0.85: 29; 30 needed in each arm)")

    close = compare(_arm(0.75, 8, 40), _arm(0.85, 6, 40))
    assert close.verdict == Verdict.NO_DIFFERENCE and 0.05 <= close.p_value < 1
    assert verdict_text(close, min_answered=30) == f"no difference shown yet (p = {close.p_value:.2f})"

    clear = compare(_arm(0.75, 30, 100), _arm(0.85, 12, 100))
    assert clear.verdict == Verdict.DIFFERENT and clear.p_value < 0.05 and clear.fewer.threshold == 0.85
    assert verdict_text(clear, min_answered=30) == "0.85 reopens fewer, p = 0.002"
    # The example, and a few more answers that make a shown difference vanish.
    assert verdict_text(compare(_arm(0.75, 25, 100), _arm(0.85, 13, 100)), min_answered=30) == (
        "0.85 reopens fewer, p = 0.03")
    assert compare(_arm(0.75, 25, 100), _arm(0.85, 20, 110)).verdict == Verdict.NO_DIFFERENCE
    # The other way round: the first arm reopens fewer.
    assert compare(_arm(0.75, 12, 100), _arm(0.85, 30, 100)).fewer.threshold == 0.75


def test_the_p_value_matches_a_hand_computed_z_test():
    # Pooled p = 42/200 = 0.21; z = (0.30 - 0.12) / sqrt(0.21 * 0.79 * (2/100)) = 3.125
    clear = compare(_arm(0.75, 30, 100), _arm(0.85, 12, 100))
    assert clear.p_value == pytest.approx(0.001778, rel=1e-3)


def test_no_spread_is_no_difference_without_a_test():
    none = compare(_arm(0.75, 0, 40), _arm(0.85, 0, 35))
    assert (none.verdict, none.p_value) == (Verdict.NO_DIFFERENCE, None)
    assert verdict_text(none, min_answered=30) == "no difference shown yet (no reopens in either arm)"


def test_the_results_are_escaped_and_say_how_more_arms_are_compared():
    from bot.domain.experiment_stats import ExperimentResults

    stopped = Experiment(3, (0.7, 0.8, 0.9), STARTED, STARTED, "UADMIN", "admin", "<!channel> done")
    arms = (_arm(0.7, 30, 100), _arm(0.8, 1, 100), _arm(0.9, 29, 100))
    results = ExperimentResults(stopped, arms, tuple(compare(arms[0], a) for a in arms[1:]))
    text = "\n".join(b.text.text if hasattr(b, "text") and b.text else str(b.to_dict())
                     for b in results_blocks(results))
    assert "&lt;!channel&gt; done" in text and "<!channel>" not in text
    assert "stopped by <@UADMIN>" in text
    assert "0.8 reopens fewer, p = &lt; 0.001" in text
    assert "no difference shown yet" in text
    assert "each is compared with the first (0.7)" in text


def test_without_any_experiment_the_status_says_how_to_start_one():
    from bot.views.experiment import experiment_status

    text, blocks = experiment_status(None)
    assert text == "No threshold experiment yet"
    assert "Set THRESHOLD_EXPERIMENT (e.g. `0.75,0.85`)" in blocks[0]["text"]["text"]
