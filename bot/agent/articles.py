"""Knowledge-base articles: Markdown files with YAML front matter, one article per file.

The shipped articles live in `bot/kb/*.md`; a company adds its own in `KB_DIR` in the
same format. A file looks like this::

    ---
    id: vpn
    title: VPN won't connect or keeps disconnecting
    team: Network                 # optional: the category's team otherwise
    category: vpn
    self_service: true            # the requester can follow the steps alone
    success_probability: 0.85
    estimated_time: 10 minutes
    severity: medium              # optional: low (default), medium, high
    examples:                     # how people ask for it; the classifier learns these
      - my vpn keeps dropping
      - can't connect to the vpn from home
      - globalprotect stuck on connecting
    ---
    1. Check that your internet works without the VPN ...
    2. Quit the VPN client completely ...

A folder is checked whole: every problem is reported, one line naming the file and the
field, because a silently skipped article is a topic the bot quietly stops answering.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

import frontmatter
import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from bot.agent.routing import CATEGORIES, team_for

MIN_EXAMPLES = 3  # fewer, and the classifier cannot tell the article's requests apart
MAX_STEPS = 15  # a resolution message stays readable in Slack
ARTICLE_SUFFIX = ".md"

_STEP = re.compile(r"^\s{0,3}(\d{1,2})[.)]\s+(\S.*)$")
_CONTINUATION = re.compile(r"^\s{2,}(\S.*)$")


class KnowledgeBaseError(Exception):
    """Articles that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Article:
    """One knowledge-base article."""

    id: str
    title: str
    category: str
    team: str
    steps: tuple[str, ...]
    estimated_time: str
    success_probability: float
    # True: the requester can follow the steps alone, so the bot may auto-resolve.
    # False: IT must act (grant access, set up an account), so the ticket is routed.
    self_service: bool
    examples: tuple[str, ...] = ()
    severity: str = "low"
    complexity: str = "low"
    # Where it was read from, for messages ("vpn.md" or a KB_DIR path).
    origin: str = ""


Text = Annotated[str, Field(min_length=1, strict=True)]


class ArticleFront(BaseModel):
    """The front matter of an article file, as people write it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    id: Annotated[Text, Field(pattern=r"^[a-z0-9_]+$")]
    title: Text
    category: Text
    team: Text | None = None
    self_service: StrictBool
    success_probability: Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
    estimated_time: Text
    severity: Literal["low", "medium", "high"] = "low"
    complexity: Literal["low", "medium", "high"] | None = None
    examples: Annotated[list[Text], Field(min_length=MIN_EXAMPLES)]

    @field_validator("category", mode="after")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value.lower() not in CATEGORIES:
            raise ValueError(f"{value!r} is not one of {', '.join(sorted(CATEGORIES))}")
        return value.lower()

    @field_validator("examples", mode="after")
    @classmethod
    def _distinct_examples(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for example in value:
            key = " ".join(example.lower().split())
            if key in seen:
                raise ValueError(f"{example!r} is listed twice")
            seen.add(key)
        return value


def parse_article(text: str, *, origin: str) -> Article:
    """One article from the text of its file.

    Args:
        text: the whole file: front matter, then the steps as a numbered list.
        origin: the file's name, used in messages.

    Returns:
        The article.

    Raises:
        KnowledgeBaseError: every problem found, each line `origin: field: what is wrong`.
    """
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1} of the front matter)" if mark is not None else ""
        raise KnowledgeBaseError([f"{origin}: front matter: not valid YAML{where}"]) from None
    problems: list[str] = []
    if not post.metadata:
        problems.append(f"{origin}: front matter: missing (the file must start with a '---' block)")
    steps, step_problem = _steps(post.content)
    front: ArticleFront | None = None
    if post.metadata:
        try:
            front = ArticleFront.model_validate(post.metadata)
        except ValidationError as error:
            problems += [f"{origin}: {_describe(e)}" for e in error.errors()]
    if step_problem:
        problems.append(f"{origin}: steps: {step_problem}")
    if problems or front is None:
        raise KnowledgeBaseError(problems)
    return Article(
        id=front.id,
        title=front.title,
        category=front.category,
        team=front.team or team_for(front.category),
        steps=steps,
        estimated_time=front.estimated_time,
        success_probability=float(front.success_probability),
        self_service=front.self_service,
        examples=tuple(front.examples),
        severity=front.severity,
        complexity=front.complexity or ("low" if front.self_service else "medium"),
        origin=origin,
    )


def check_directory(directory: Path | Traversable, *, label: str | None = None) -> tuple[
    tuple[Article, ...], tuple[str, ...]
]:
    """Read every `*.md` article in a folder and collect every problem.

    Args:
        directory: the folder.
        label: how files are named in messages (default: the folder's path); the
            shipped articles use their bare file names.

    Returns:
        The valid articles (sorted by id) and the problems, one line each, naming the
        file and the field. No problems means the folder is fit to use.
    """
    prefix = "" if label == "" else f"{directory if label is None else label}/"
    if not directory.is_dir():
        return (), (f"{directory}: not a folder",)
    files = sorted(
        (f for f in directory.iterdir() if f.name.endswith(ARTICLE_SUFFIX) and not f.name.startswith(".")),
        key=lambda f: f.name,
    )
    if not files:
        return (), (f"{directory}: no articles (*{ARTICLE_SUFFIX} files) in this folder",)
    articles: dict[str, Article] = {}
    problems: list[str] = []
    for file in files:
        origin = f"{prefix}{file.name}"
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{origin}: file: not readable as UTF-8 text ({error.__class__.__name__})")
            continue
        try:
            article = parse_article(text, origin=origin)
        except KnowledgeBaseError as error:
            problems += error.problems
            continue
        if article.id in articles:
            problems.append(f"{origin}: id: {article.id!r} is already used by {articles[article.id].origin}")
            continue
        articles[article.id] = article
    return tuple(articles[key] for key in sorted(articles)), tuple(problems)


def shipped_directory() -> Traversable:
    """The folder of the articles shipped with the bot."""
    return resources.files("bot") / "kb"


@lru_cache(maxsize=1)
def shipped_articles() -> tuple[Article, ...]:
    """The shipped articles, read once per process (they are part of the package)."""
    return load_articles()


def load_articles(directory: Path | Traversable | None = None) -> tuple[Article, ...]:
    """The articles of one folder, or none at all if any of them is broken.

    Args:
        directory: the folder; default the shipped articles.

    Returns:
        The articles, sorted by id.

    Raises:
        KnowledgeBaseError: every problem in the folder, one line each.
    """
    if directory is None:
        articles, problems = check_directory(shipped_directory(), label="")
    else:
        articles, problems = check_directory(directory)
    if problems:
        raise KnowledgeBaseError(problems)
    return articles


def load_library(kb_dir: Path | None = None, *, shipped: bool = True) -> tuple[Article, ...]:
    """The articles the agent answers from: the shipped ones, then the company's own.

    Args:
        kb_dir: KB_DIR, the company's folder of articles, if any.
        shipped: KB_SHIPPED; False leaves the shipped articles out.

    Returns:
        The articles, sorted by id. An article in `kb_dir` whose id is a shipped
        article's replaces it.

    Raises:
        KnowledgeBaseError: a broken article in either folder (every problem, one
            line each), or no articles at all.
    """
    merged: dict[str, Article] = {}
    if shipped:
        merged.update((a.id, a) for a in shipped_articles())
    if kb_dir is not None:
        merged.update((a.id, a) for a in load_articles(kb_dir))
    if not merged:
        raise KnowledgeBaseError(["no articles: KB_SHIPPED=false needs a KB_DIR with articles"])
    return tuple(merged[key] for key in sorted(merged))


def _steps(body: str) -> tuple[tuple[str, ...], str | None]:
    steps: list[str] = []
    for line in body.splitlines():
        step = _STEP.match(line)
        if step:
            steps.append(step.group(2).strip())
            continue
        more = _CONTINUATION.match(line)
        if more and steps:
            # A wrapped step: its next line is indented under it.
            steps[-1] = f"{steps[-1]} {more.group(1).strip()}"
    if not steps:
        return (), "no numbered list in the body (write the steps as '1. ...', '2. ...')"
    if len(steps) > MAX_STEPS:
        return (), f"expected at most {MAX_STEPS} numbered steps, found {len(steps)}"
    return tuple(steps), None


_MESSAGES = {
    "missing": "missing (required)",
    "extra_forbidden": "unknown field",
    "bool_type": "expected true or false",
    "float_type": "expected a number from 0 to 1",
    "string_type": "expected text",
    "list_type": "expected a list of phrasings ('- ...' lines)",
}


def _describe(error: Any) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    field = loc[0] if loc else "front matter"
    if len(loc) > 1 and loc[1].isdigit():
        field = f"{field}[{int(loc[1]) + 1}]"
    kind = error.get("type", "")
    if kind in _MESSAGES:
        message = _MESSAGES[kind]
    elif kind == "too_short" and field == "examples":
        got = len(error.get("input") or [])
        message = f"expected at least {MIN_EXAMPLES} phrasings, got {got}"
    elif kind == "string_too_short":
        message = "expected non-empty text"
    elif kind == "string_pattern_mismatch":
        message = f"{error.get('input')!r}: expected lowercase letters, digits and _"
    elif kind in ("greater_than_equal", "less_than_equal"):
        message = f"{error.get('input')!r}: expected a number from 0 to 1"
    elif kind == "literal_error":
        message = f"{error.get('input')!r}: expected low, medium or high"
    else:
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{field}: {message}"
