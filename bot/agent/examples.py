"""The labelled requests shipped with the agent (in `bot/agent/data/`).

- `training.yaml`: critical requests by kind and out-of-scope requests. The agent learns
  them next to the articles' own examples; they never come from KB_DIR.
- `evaluation_<split>.yaml`: the evaluation set of `bench/agent_eval.py`, one file per
  split. Nothing is ever trained on them. The tuning splits (`tuning`; `tuning_r1`,
  `tuning_r2` and `tuning_r3`, the held-out parts of rounds one to three, each run once
  and then tuned on) may be looked at while changing the agent; the held-out split
  (`held_out_v4`, written by someone else and added by the lead) is read only when
  named, once, when every change is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

CRITICAL_PREFIX = "critical/"
OUT_OF_SCOPE = "out_of_scope"
TUNING_SPLITS = ("tuning", "tuning_r1", "tuning_r2", "tuning_r3")
HELD_OUT_SPLITS = ("held_out_v4",)
SPLITS = (*TUNING_SPLITS, *HELD_OUT_SPLITS)


@dataclass(frozen=True)
class TrainingExamples:
    """What the agent learns besides the articles."""

    # (kind, request) pairs; kinds as in bot/agent/critical.py.
    critical: tuple[tuple[str, str], ...]
    out_of_scope: tuple[str, ...]


@dataclass(frozen=True)
class LabelledRequest:
    """One evaluation request and what should happen to it."""

    text: str
    # An article id, "critical/<kind>" or "out_of_scope".
    label: str
    split: str

    @property
    def critical_kind(self) -> str | None:
        return self.label.removeprefix(CRITICAL_PREFIX) if self.is_critical else None

    @property
    def is_critical(self) -> bool:
        return self.label.startswith(CRITICAL_PREFIX)

    @property
    def is_out_of_scope(self) -> bool:
        return self.label == OUT_OF_SCOPE

    @property
    def article_id(self) -> str | None:
        return None if self.is_critical or self.is_out_of_scope else self.label


def _read(name: str) -> dict:
    text = (resources.files("bot.agent") / "data" / name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def training_examples() -> TrainingExamples:
    """The shipped critical and out-of-scope examples, read once per process."""
    data = _read("training.yaml")
    critical = tuple(
        (kind, text) for kind, texts in data["critical"].items() for text in texts
    )
    return TrainingExamples(critical=critical, out_of_scope=tuple(data["out_of_scope"]))


def evaluation_set(split: str) -> tuple[LabelledRequest, ...]:
    """The labelled requests of one split.

    Args:
        split: one of `SPLITS`.

    Returns:
        The requests in file order.

    Raises:
        ValueError: an unknown split, its file not there yet (the held-out one is
            added by whoever wrote it), or a file not shaped as `split:` and `requests:`
            (labels mapped to lists of requests).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    name = f"evaluation_{split}.yaml"
    try:
        data = _read(name)
    except FileNotFoundError:
        raise ValueError(f"{name} is not in bot/agent/data/ yet") from None
    if not isinstance(data, dict) or not data.get("split") or not isinstance(data.get("requests"), dict):
        raise ValueError(f"{name}: expected 'split:' and a 'requests:' mapping")
    # The held-out file was written by someone else, unseen: its `split:` wording is theirs.
    if split in TUNING_SPLITS and data["split"] != split:
        raise ValueError(f"{name} says split {data['split']!r}")
    requests = []
    for label, texts in data["requests"].items():
        if not isinstance(texts, list) or not all(isinstance(t, str | int | float) for t in texts):
            raise ValueError(f"{name}: requests.{label}: expected a list of requests")
        requests += [LabelledRequest(text=str(text), label=str(label), split=split) for text in texts]
    return tuple(requests)
