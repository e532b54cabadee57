"""THRESHOLD_EXPERIMENT in Slack: the results per arm and the verdict in plain words, in
`/autonomy experiment`, `/resolution-stats` and the App Home; the stop as the admin
sees it and as ALERTS_CHANNEL hears it.

Duck-typed on bot.domain.experiment_stats (ExperimentResults: experiment, arms,
comparisons, min_answered; ArmFigures; Comparison: baseline, arm, verdict, p_value,
fewer) and bot.domain.experiments.Experiment. The admin's reason is their own text:
escaped and clipped here.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from bot.views.common import context, fallback, header, percent, section, table, to_dicts, when
from bot.views.escape import clip, escape, mention

Blocks = list[dict[str, Any]]

REASON_LIMIT = 500
NOT_ENOUGH = "not enough data yet"
NO_EXPERIMENT = ("No threshold experiment has run yet. Set THRESHOLD_EXPERIMENT (e.g. `0.75,0.85`) "
                 "to give each ticket one of those AUTONOMY_THRESHOLDs and compare them.")
_CAUSES = {"admin": "stopped by", "unset": "stopped: THRESHOLD_EXPERIMENT was unset",
           "changed": "stopped: THRESHOLD_EXPERIMENT was changed"}
EXPLAINED = ("Each ticket is in one arm (a stable hash of its id) and that arm is its AUTONOMY_THRESHOLD. "
             "Autonomy = autonomous acts / decisions. Each ticket counts once, by the worst outcome of "
             "the bot's actions on it: Rolled back, else No (answered No or reopened), else Yes. "
             "Reopen rate = No / (Yes + No). CSAT = the share of 4 and 5 star ratings of the bot's "
             "resolutions. The test is a two-proportion z-test on the reopen rate.")


def arm_name(threshold: float) -> str:
    """An arm as people set it: 0.85."""
    return f"{threshold:g}"


def verdict_text(comparison: Any, *, min_answered: int) -> str:
    """The verdict in plain words: "not enough data yet (…)", "no difference shown yet
    (p = 0.41)" or "0.85 reopens fewer, p = 0.03"."""
    base, arm = comparison.baseline, comparison.arm
    if comparison.verdict == "not_enough":
        return (f"{NOT_ENOUGH} ({arm_name(base.threshold)}: {base.answered} answered, "
                f"{arm_name(arm.threshold)}: {arm.answered}; {min_answered} needed in each arm)")
    if comparison.verdict == "no_difference":
        if comparison.p_value is None:
            same = "no reopens in either arm" if not (base.reopened or arm.reopened) else "every answer a No"
            return f"no difference shown yet ({same})"
        return f"no difference shown yet (p = {_p(comparison.p_value)})"
    return f"{arm_name(comparison.fewer.threshold)} reopens fewer, p = {_p(comparison.p_value)}"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.2f}" if value >= 0.01 else f"{value:.3f}"


def state_line(experiment: Any) -> str:
    """Running since when, or stopped when, by whom or what, and why (escaped)."""
    arms = " vs ".join(arm_name(a) for a in experiment.arms)
    line = f"AUTONOMY_THRESHOLD {arms}, started {when(experiment.started_at)}"
    if experiment.stopped_at is None:
        return f"*Running*: {line}."
    cause = _CAUSES.get(experiment.stop_cause or "", "stopped")
    if experiment.stop_cause == "admin" and experiment.stopped_by:
        cause += f" {mention(experiment.stopped_by)}"
    line = f"*Stopped*: {line}; {cause} at {when(experiment.stopped_at)}"
    if experiment.stop_cause == "admin" and experiment.stop_reason:
        line += f": _{clip(experiment.stop_reason, REASON_LIMIT)}_"
    return line + "."


def results_blocks(results: Any | None, *, title: str = "Threshold experiment") -> list[Block]:
    """The experiment's state, a row per arm and each comparison's verdict; nothing
    without results."""
    if results is None:
        return []
    rows = [
        (arm_name(a.threshold), str(a.tickets), percent(a.autonomy_rate), str(a.confirmed), str(a.reopened),
         str(a.rolled_back), percent(a.reopen_rate),
         "n/a" if a.csat.share is None else f"{percent(a.csat.share)} of {a.csat.ratings}")
        for a in results.arms
    ]
    shown = table(("Arm", "Tickets", "Autonomy", "Yes", "No", "Rolled back", "Reopen rate", "CSAT"),
                  rows, noun="arms")
    verdicts = [f"• {escape(verdict_text(c, min_answered=results.min_answered))}"
                for c in results.comparisons]
    blocks: list[Block] = [
        section(f"*{escape(title)}*\n{state_line(results.experiment)}\n{shown}"),
        section("*Verdict on the reopen rate*\n" + "\n".join(verdicts)),
    ]
    notes = [EXPLAINED, f"No verdict before {results.min_answered} answered tickets in each arm; "
                        "a difference is shown at p < 0.05."]
    if len(results.arms) > 2:
        first = arm_name(results.arms[0].threshold)
        notes.append(f"More than two arms: each is compared with the first ({first}), "
                     "without correcting for the number of comparisons.")
    blocks.append(context(" ".join(notes)))
    return blocks


def experiment_status(results: Any | None) -> tuple[str, Blocks]:
    """`/autonomy experiment`: the latest experiment's results, running or stopped."""
    if results is None:
        return fallback("No threshold experiment yet"), to_dicts([section(NO_EXPERIMENT)])
    running = results.experiment.stopped_at is None
    blocks = [header("Threshold experiment"), *results_blocks(results, title="Results so far" if running
                                                               else "Final results")]
    if running:
        blocks.append(context("`/autonomy experiment stop [reason]` ends it; "
                              "the results stay readable here."))
    return fallback("Threshold experiment: " + ("running" if running else "stopped")), to_dicts(blocks)


def experiment_stopped(results: Any | None, *, announced: bool) -> tuple[str, Blocks]:
    """What the admin who ran `/autonomy experiment stop` is told."""
    if results is None:
        text = "No threshold experiment is running. Nothing changed."
        return text, to_dicts([section(escape(text))])
    text = "Threshold experiment stopped."
    told = ("Announced in the alerts channel and recorded in the audit log." if announced else
            "Recorded in the audit log (no ALERTS_CHANNEL is set to announce it in).")
    after = ("Every ticket now uses AUTONOMY_THRESHOLD. The same arms are not started again "
             "while THRESHOLD_EXPERIMENT keeps them; unset it (or set other arms).")
    return fallback(text), to_dicts([section(f"*{text}*"), *results_blocks(results, title="Final results"),
                                     context(f"{after} {told}")])


def experiment_announcement(experiment: Any) -> tuple[str, Blocks]:
    """The notice in ALERTS_CHANNEL: who stopped which experiment, and why."""
    who = mention(experiment.stopped_by) if experiment.stopped_by else "Someone"
    arms = " vs ".join(arm_name(a) for a in experiment.arms)
    text = f"Threshold experiment {arms} stopped"
    body = f"*{who} stopped the threshold experiment* (AUTONOMY_THRESHOLD {arms})."
    if experiment.stop_reason:
        body += f"\nReason: _{clip(experiment.stop_reason, REASON_LIMIT)}_"
    return fallback(text), to_dicts([
        section(body),
        context("Every ticket now uses AUTONOMY_THRESHOLD. `/autonomy experiment` shows the results."),
    ])
