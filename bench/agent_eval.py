"""How well the embedded agent decides, on labelled requests written as people write them.

    python -m bench.agent_eval --split tuning --misses    # one tuning split, its errors listed
    python -m bench.agent_eval --no-costs                 # the four tuning splits, no timings
    python -m bench.agent_eval --split tuning --split tuning_r1 --split tuning_r2 \
        --split tuning_r3 --split held_out_v4 --misses \
        --png docs/agent_reliability.png                  # the held-out run, once

The held-out split is read only when named: it is run once, when every change to the
agent is done and committed; any other run (no --split) reads the tuning splits only.

Each request of `bot/agent/data/evaluation_<split>.yaml` goes through the embedded agent
and the policy with the default bands (no database, no caps: what the bot would do).
For each split it reports:

- answerable by a self-service article: auto-resolved with that article;
- answerable by an article IT must act on: routed to that article's team;
- critical: escalated (and of the right kind);
- out of scope or too vague: kept from autonomous action (not auto-resolved);
- wrong autonomous acts: auto-resolutions with the wrong article, or of a critical or
  out-of-scope request;
- calibration: per confidence bin, the stated confidence beside the share right (the
  named article is the labelled one, or an escalation is of a critical request), the
  expected calibration error and its bootstrap 95% interval, and a reliability diagram;
- how many of its requests are, word for word, a phrasing the agent learns (should be 0).

Then the costs: time to build the agent for the shipped articles and for a synthetic
library of 500 articles, and CPU per decision for both. Self-contained on purpose
(no bench.common), so it runs without PostgreSQL, Redis or a fake Slack.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from bot.agent import critical as critical_module
from bot.agent import kb as kb_module
from bot.agent.answer import AgentAnswer, Recommendation, TicketInput
from bot.agent.articles import Article, load_articles
from bot.agent.examples import SPLITS, TUNING_SPLITS, LabelledRequest, evaluation_set, training_examples
from bot.agent.kb import KnowledgeBaseAgent
from bot.core.settings import Settings, load_settings
from bot.domain import policy
from models import ActionType

BINS = 10
BOOTSTRAP = 2000
SEED = 0


@dataclass(frozen=True)
class Decision:
    request: LabelledRequest
    answer: AgentAnswer
    action: str
    team: str

    @property
    def right(self) -> bool:
        """Whether what the confidence is about came true (the calibration's outcome)."""
        if self.answer.recommended_action == Recommendation.ESCALATE and self.answer.severity == "critical":
            return self.request.is_critical
        return self.answer.source != "" and self.answer.source == self.request.article_id

    @property
    def wrong_autonomous_act(self) -> bool:
        return self.action == ActionType.AUTO_RESOLVE and self.answer.source != self.request.article_id


def decide(
    agent: KnowledgeBaseAgent, requests: Sequence[LabelledRequest], settings: Settings
) -> list[Decision]:
    decisions = []
    for n, request in enumerate(requests, 1):
        answer = agent.analyse(TicketInput(ticket_id=n, description=request.text))
        planned = policy.plan(answer, settings)
        decisions.append(Decision(request, answer, planned.action_type, planned.params.get("team", "")))
    return decisions


def share(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.1%})" if total else "0/0 (-)"


def handled_well(d: Decision, articles: dict[str, Article]) -> bool:
    """What the bot should do: resolve, route, escalate or hold back (for --misses)."""
    request = d.request
    if request.is_critical:
        return d.action == ActionType.ESCALATE
    if request.is_out_of_scope:
        return d.action != ActionType.AUTO_RESOLVE and d.answer.severity != "critical"
    assert request.article_id is not None  # neither critical nor out of scope: answerable
    article = articles[request.article_id]
    if d.answer.source != article.id:
        return False
    if article.self_service:
        return d.action == ActionType.AUTO_RESOLVE
    return d.action == ActionType.ASSIGN_TO_TEAM and d.team == article.team


def report_split(
    name: str, decisions: list[Decision], articles: dict[str, Article], settings: Settings, misses: bool
) -> list[str]:
    def article(d: Decision) -> Article:
        assert d.request.article_id is not None
        return articles[d.request.article_id]

    def resolved_right(d: Decision) -> bool:
        return d.action == ActionType.AUTO_RESOLVE and d.answer.source == d.request.article_id

    answerable = [d for d in decisions if d.request.article_id]
    self_service = [d for d in answerable if article(d).self_service]
    it_acts = [d for d in answerable if not article(d).self_service]
    allowed = [d for d in self_service if article(d).success_probability >= settings.auto_resolve_min_success]
    critical = [d for d in decisions if d.request.is_critical]
    out = [d for d in decisions if d.request.is_out_of_scope]
    everyday = len(decisions) - len(critical)
    high = settings.autonomy_threshold
    named_high = [d for d in self_service
                  if d.answer.source == d.request.article_id and d.answer.confidence >= high]
    routed = [d for d in it_acts if d.action == ActionType.ASSIGN_TO_TEAM and d.team == article(d).team]
    right_kind = [d for d in critical if d.answer.source == f"critical:{d.request.critical_kind}"]
    false_alarms = [d for d in decisions
                    if not d.request.is_critical and d.action == ActionType.ESCALATE
                    and d.answer.severity == "critical"]
    rows = [
        ("self-service answerable, auto-resolved by the right article",
         share(sum(map(resolved_right, self_service)), len(self_service))),
        (f"  of them, articles the policy may auto-resolve (success >= {settings.auto_resolve_min_success})",
         share(sum(map(resolved_right, allowed)), len(allowed))),
        ("  right article named in the high band (the agent's part)",
         share(len(named_high), len(self_service))),
        ("IT-must-act answerable, routed to the right team", share(len(routed), len(it_acts))),
        ("critical, escalated", share(sum(d.action == ActionType.ESCALATE for d in critical), len(critical))),
        ("  escalated as the right kind", share(len(right_kind), len(critical))),
        ("out of scope / too vague, kept from autonomous action",
         share(sum(d.action != ActionType.AUTO_RESOLVE for d in out), len(out))),
        ("**wrong autonomous acts**", f"**{sum(d.wrong_autonomous_act for d in decisions)}**"),
        ("everyday requests escalated as critical (false alarms)", share(len(false_alarms), everyday)),
        ("requests that are word for word a phrasing the agent learns",
         share(len(learned(decisions, articles.values())), len(decisions))),
    ]
    lines = [f"## Split: {name} ({len(decisions)} requests)", "", "| measure | result |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in rows]
    lines += ["", *calibration_lines(decisions)]
    if misses:
        lines += ["", "Misses:"]
        lines += [f"- [{d.request.label}] {d.request.text!r} -> {d.action} {d.answer.source or '-'} "
                  f"{d.answer.confidence:.2f}" for d in decisions if not handled_well(d, articles)]
    return lines


def learned(decisions: list[Decision], articles: Iterable[Article]) -> list[Decision]:
    """The evaluated requests that are also training phrasings (case and spacing aside)."""
    def key(text: str) -> str:
        return " ".join(text.lower().split())

    shipped = training_examples()
    trained = {key(e) for a in articles for e in a.examples}
    trained |= {key(text) for _, text in shipped.critical} | {key(text) for text in shipped.out_of_scope}
    return [d for d in decisions if key(d.request.text) in trained]


def ece(confidences: Sequence[float], rights: Sequence[bool]) -> float:
    total = len(confidences)
    error = 0.0
    for b in range(BINS):
        members = [i for i, c in enumerate(confidences) if _bin(c) == b]
        if members:
            stated = statistics.fmean(confidences[i] for i in members)
            observed = statistics.fmean(1.0 if rights[i] else 0.0 for i in members)
            error += len(members) / total * abs(stated - observed)
    return error


def _bin(confidence: float) -> int:
    return min(BINS - 1, int(confidence * BINS))


def calibration_lines(decisions: list[Decision]) -> list[str]:
    confidences = [d.answer.confidence for d in decisions]
    rights = [d.right for d in decisions]
    lines = ["| confidence bin | requests | stated (mean) | observed share right |", "|---|---|---|---|"]
    for b in range(BINS):
        members = [i for i, c in enumerate(confidences) if _bin(c) == b]
        if not members:
            continue
        stated = statistics.fmean(confidences[i] for i in members)
        observed = statistics.fmean(1.0 if rights[i] else 0.0 for i in members)
        span = f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}"
        lines.append(f"| {span} | {len(members)} | {stated:.3f} | {observed:.3f} |")
    rng = random.Random(SEED)
    n = len(decisions)
    samples = []
    for _ in range(BOOTSTRAP):
        picks = [rng.randrange(n) for _ in range(n)]
        samples.append(ece([confidences[i] for i in picks], [rights[i] for i in picks]))
    samples.sort()
    low, high = samples[int(0.025 * BOOTSTRAP)], samples[int(0.975 * BOOTSTRAP) - 1]
    lines += ["", f"Expected calibration error ({BINS} equal bins): **{ece(confidences, rights):.3f}** "
                  f"(bootstrap 95% interval {low:.3f}-{high:.3f}, {BOOTSTRAP} resamples)"]
    return lines


def reliability_png(path: str, by_split: dict[str, list[Decision]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay

    figure, (curve, counts) = plt.subplots(2, 1, figsize=(6, 7.5), height_ratios=(3, 1))
    for name, decisions in by_split.items():
        CalibrationDisplay.from_predictions(
            [d.right for d in decisions], [d.answer.confidence for d in decisions],
            n_bins=BINS, name=f"{name} ({len(decisions)})", ax=curve)
        counts.hist([d.answer.confidence for d in decisions], bins=BINS, range=(0, 1), alpha=0.5,
                    label=name)
    curve.set_title("Embedded agent: stated confidence vs share right")
    curve.set_xlabel("stated confidence (mean of the bin)")
    curve.set_ylabel("observed share right")
    counts.set_xlabel("stated confidence")
    counts.set_ylabel("requests")
    counts.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def synthetic_library(size: int, shipped: Sequence[Article]) -> list[Article]:
    """`size` distinct made-up articles, 20 phrasings each, in the shipped articles' format.

    Each article is about its own made-up system ("kalotur7") and symptom words, put into
    everyday sentence frames, so articles differ the way a real library's topics do
    (not 33 copies of each shipped article, which no company writes).
    """
    rng = random.Random(SEED)
    syllables = "ka lo mi tur ven sa dro pel quin bex zor fa nu rim".split()
    frames = [
        "{s} won't {v}", "my {s} keeps {g}", "can't {v} {s}", "{s} is {a} again", "{s} {a} since today",
        "how do I {v} {s}", "{s} error when I {v}", "help, {s} {a}", "{s} not {g} at all", "why is {s} {a}",
        "{s} stopped {g}", "{v} {s} fails", "urgent: {s} {a}", "{s} {a} on my laptop", "{s} {a} for me",
        "I need to {v} {s}", "{s} says {a}", "{s} keeps {g} and then {a}", "cannot get {s} to {v}",
        "{s} broken, {a}",
    ]
    verbs = ["open", "sync", "load", "print", "save", "start", "connect", "export", "upload", "log into"]
    states = ["frozen", "blank", "offline", "stuck", "crashing", "timing out", "greyed out", "rejected",
              "slow", "missing"]
    articles = []
    for n in range(size):
        base = shipped[n % len(shipped)]
        system = "".join(rng.choice(syllables) for _ in range(3)) + str(n)
        verb, state = rng.choice(verbs), rng.choice(states)
        gerund = verb.split()[0] + "ing"
        examples = tuple(f.format(s=system, v=verb, a=state, g=gerund) for f in frames)
        articles.append(replace(base, id=f"synthetic_{n:03d}", title=f"{system}: {verb} fails, {state}",
                                examples=examples))
    return articles


def costs(articles: Sequence[Article], texts: Sequence[str], label: str) -> list[str]:
    kb_module._fit.cache_clear()
    critical_module._fit.cache_clear()  # (the agent shares its features; the detector alone has its own)
    started, cpu_started = time.perf_counter(), time.process_time()
    agent = KnowledgeBaseAgent(articles)
    built, built_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    for text in texts[:20]:
        agent.analyse(TicketInput(1, text))
    rounds = max(1, 2000 // len(texts))
    cpu = time.process_time()
    for _ in range(rounds):
        for text in texts:
            agent.analyse(TicketInput(1, text))
    per_decision = (time.process_time() - cpu) / (rounds * len(texts)) * 1000
    return [f"| {label} | {len(articles)} | {built:.2f} s | {built_cpu:.2f} s | {per_decision:.2f} ms |"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.agent_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, action="append",
                        help=f"a split to evaluate, repeatable (default: the tuning splits, "
                             f"{', '.join(TUNING_SPLITS)})")
    parser.add_argument("--misses", action="store_true", help="list each request handled wrongly")
    parser.add_argument("--png", help="write the reliability diagram here")
    parser.add_argument("--no-costs", action="store_true", help="skip the build and CPU timings")
    args = parser.parse_args(argv)

    settings = load_settings()
    articles = load_articles()
    by_id = {a.id: a for a in articles}
    print(f"# Embedded agent evaluation\n\nPython {platform.python_version()} on {platform.machine()}; "
          f"bands {settings.autonomy_threshold} / {settings.medium_confidence_threshold} / "
          f"{settings.low_confidence_threshold}; auto-resolve needs success >= "
          f"{settings.auto_resolve_min_success}; {len(articles)} shipped articles.\n")
    agent = KnowledgeBaseAgent(articles)
    splits = TUNING_SPLITS if args.split is None else tuple(dict.fromkeys(args.split))
    by_split: dict[str, list[Decision]] = {}
    for split in splits:
        try:
            requests = evaluation_set(split)
        except ValueError as error:
            print(f"split {split}: {error}", file=sys.stderr)
            return 2
        unknown = Counter(r.label for r in requests if r.article_id and r.article_id not in by_id)
        if unknown:
            print(f"unknown article labels in {split}: {dict(unknown)}", file=sys.stderr)
            return 2
        by_split[split] = decide(agent, requests, settings)
        print("\n".join(report_split(split, by_split[split], by_id, settings, args.misses)) + "\n")
    if args.png:
        reliability_png(args.png, by_split)
        print(f"Reliability diagram: {args.png}\n")
    if not args.no_costs:
        # The tuning splits' requests (923), whichever split was evaluated.
        texts = [r.text for split in TUNING_SPLITS for r in evaluation_set(split)]
        lines = ["## Costs", "", "| library | articles | build (wall) | build (CPU) | CPU per decision |",
                 "|---|---|---|---|---|"]
        lines += costs(articles, texts, "shipped")
        lines += costs(synthetic_library(500, articles), texts, "synthetic")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
