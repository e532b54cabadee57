"""Knowledge-base articles: the JSON files in `bot/kb/`, loaded and checked once.

Each file holds one article. A broken file stops the load with an error naming the
file and the field, because a silently skipped article is a topic the bot quietly
stops answering.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from bot.agent.routing import CATEGORIES, team_for
from bot.agent.textmatch import stems

_SEVERITIES = frozenset({"low", "medium", "high"})
_COMPLEXITIES = frozenset({"low", "medium", "high"})
_MIN_STEPS, _MAX_STEPS = 3, 8
_ID = re.compile(r"^[a-z0-9_]+$")


class KnowledgeBaseError(Exception):
    """An article file is unreadable or does not follow the article format."""


@dataclass(frozen=True)
class Article:
    """One knowledge-base article."""

    id: str
    title: str
    category: str
    team: str
    keywords: tuple[str, ...]
    steps: tuple[str, ...]
    estimated_time: str
    success_probability: float
    # True: the requester can follow the steps alone, so the bot may auto-resolve.
    # False: IT must act (grant access, set up an account), so the ticket is routed.
    self_service: bool
    severity: str = "low"
    complexity: str = "low"


def load_articles(directory: Path | Traversable | None = None) -> tuple[Article, ...]:
    """Read and validate every `*.json` article in a directory.

    Args:
        directory: where the articles are; default the package's own `bot/kb/`.

    Returns:
        The articles, sorted by id.

    Raises:
        KnowledgeBaseError: a file is not valid JSON or not a valid article (the
            message names the file), two articles share an id, or there are none.
    """
    root = directory if directory is not None else resources.files("bot") / "kb"
    files = sorted((f for f in root.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)
    articles: dict[str, Article] = {}
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise KnowledgeBaseError(
                f"KB article {file.name}: not readable JSON ({error})"
            ) from None
        try:
            article = _parse(data)
        except ValueError as error:
            raise KnowledgeBaseError(f"KB article {file.name}: {error}") from None
        if article.id in articles:
            raise KnowledgeBaseError(f"KB article {file.name}: duplicate id {article.id!r}")
        articles[article.id] = article
    if not articles:
        raise KnowledgeBaseError(f"no KB articles (*.json) found in {root}")
    return tuple(articles[key] for key in sorted(articles))


@lru_cache(maxsize=1)
def default_articles() -> tuple[Article, ...]:
    """The shipped articles, read once per process."""
    return load_articles()


def _parse(data: Any) -> Article:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    category = _text(data, "category").lower()
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} is not one of {sorted(CATEGORIES)}")
    steps = _texts(data, "steps")
    if not _MIN_STEPS <= len(steps) <= _MAX_STEPS:
        raise ValueError(f"steps: expected {_MIN_STEPS} to {_MAX_STEPS}, got {len(steps)}")
    success = data.get("success_probability")
    if isinstance(success, bool) or not isinstance(success, (int, float)) or not 0 <= success <= 1:
        raise ValueError("success_probability: expected a number from 0 to 1")
    self_service = data.get("self_service")
    if not isinstance(self_service, bool):
        raise ValueError("self_service: expected true or false")
    team = data.get("team")
    if team is not None and (not isinstance(team, str) or not team.strip()):
        raise ValueError("team: expected a non-empty string when given")
    severity = str(data.get("severity", "low")).lower()
    complexity = str(data.get("complexity", "low" if self_service else "medium")).lower()
    if severity not in _SEVERITIES or complexity not in _COMPLEXITIES:
        raise ValueError("severity/complexity: expected low, medium or high")
    article_id = _text(data, "id")
    if not _ID.match(article_id):
        raise ValueError(f"id {article_id!r}: expected lowercase letters, digits and _")
    keywords = _texts(data, "keywords")
    # A keyword made only of stop words ("can't") could never match anything.
    empty = [k for k in keywords if not stems(k)]
    if empty:
        raise ValueError(f"keywords {empty!r} have no meaningful word")
    return Article(
        id=article_id,
        title=_text(data, "title"),
        category=category,
        team=team.strip() if team else team_for(category),
        keywords=keywords,
        steps=steps,
        estimated_time=_text(data, "estimated_time"),
        success_probability=float(success),
        self_service=self_service,
        severity=severity,
        complexity=complexity,
    )


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: expected a non-empty string")
    return value.strip()


def _texts(data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name}: expected a non-empty list of strings")
    if not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"{name}: every item must be a non-empty string")
    return tuple(item.strip() for item in value)
