"""The labelled requests shipped with the agent (in `bot/agent/data/`).

- `training.yaml`: critical requests by kind and out-of-scope requests. The agent learns
  them next to the articles' own examples; they never come from KB_DIR.
- `evaluation_tuning.yaml` and `evaluation_held_out.yaml`: the evaluation set of
  `bench/agent_eval.py`, one file per split. Nothing is ever trained on either; the
  held-out one is not tuned on either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

CRITICAL_PREFIX = "critical/"
OUT_OF_SCOPE = "out_of_scope"
SPLITS = ("tuning", "held_out")


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
        split: "tuning" or "held_out".

    Returns:
        The requests in file order.

    Raises:
        ValueError: an unknown split, or a file that says it is another split.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    data = _read(f"evaluation_{split}.yaml")
    if data.get("split") != split:
        raise ValueError(f"evaluation_{split}.yaml says split {data.get('split')!r}")
    return tuple(
        LabelledRequest(text=str(text), label=label, split=split)
        for label, texts in data["requests"].items()
        for text in texts
    )
