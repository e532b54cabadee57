"""The embedded agent: rank the shipped knowledge-base articles against a request.

Deterministic by construction (no randomness, no model, ties broken by article id), so
the same request always gets the same answer and every answer can be explained by the
words that matched. The score is a small BM25-flavoured keyword sum:

- each distinct request word found in an article's keywords adds its IDF (rarer across
  articles = more telling); words that occur only inside a multi-word keyword add a
  fraction, so "work" alone does not pull in the VPN article's "work from home";
- each multi-word keyword found as a phrase adds a bonus.

Confidence grows with the best score (a logistic curve) and shrinks as the runner-up
comes close, so a request that fits two articles equally lands mid-band.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.agent.answer import AgentAnswer, CallRecorder, Recommendation, TicketInput
from bot.agent.articles import Article, default_articles, load_articles
from bot.agent.critical import CriticalMatch, find_critical
from bot.agent.routing import team_for
from bot.agent.textmatch import Term, contains_phrase, stems, terms

PARTIAL_WEIGHT = 0.4  # a word met only inside a multi-word keyword
PHRASE_BONUS = 0.6  # extra weight of a matched multi-word keyword, times its words' IDF
# Logistic curve from score to strength: a score of MID gives 0.5.
MID_SCORE, SCORE_SCALE = 2.5, 0.8
CONFIDENT = 0.8  # at or above: a self-service article may be auto-resolved
UNSURE = 0.3  # below: ask the requester rather than guess
CRITICAL_CONFIDENCE = 0.95  # critical words are explicit signals


@dataclass(frozen=True)
class _Indexed:
    article: Article
    singles: frozenset[str]
    phrases: tuple[tuple[str, ...], ...]
    vocabulary: frozenset[str]


@dataclass
class _Scored:
    article: Article
    score: float
    words: list[str] = field(default_factory=list)


class KnowledgeBaseAgent:
    """Answers from the knowledge base shipped in `bot/kb/`; needs no network."""

    name = "knowledge_base"

    def __init__(
        self, articles: Sequence[Article] | None = None, *, directory: Path | None = None
    ) -> None:
        """Build the index.

        Args:
            articles: the articles to rank; default the shipped ones (read once per process).
            directory: read the articles from this directory instead (for tests).
        """
        if articles is None:
            articles = load_articles(directory) if directory is not None else default_articles()
        self.articles = tuple(sorted(articles, key=lambda a: a.id))
        self._index = tuple(_index(a) for a in self.articles)
        frequency: dict[str, int] = {}
        for entry in self._index:
            for stem in entry.vocabulary:
                frequency[stem] = frequency.get(stem, 0) + 1
        n = len(self._index)
        # BM25's IDF: always positive, highest for a word only one article knows.
        self._idf = {s: math.log(1 + (n - df + 0.5) / (df + 0.5)) for s, df in frequency.items()}

    def analyse(self, ticket: TicketInput, *, record: CallRecorder | None = None) -> AgentAnswer:
        """Match the ticket's description (and tags) against the articles.

        Args:
            ticket: the ticket; its description must not be blank.
            record: told once about the call (it never fails once started).

        Returns:
            The answer; `source` is the best article's id ("" when nothing matched).

        Raises:
            ValueError: the description is empty or only whitespace.
        """
        if not ticket.description or not ticket.description.strip():
            raise ValueError("the ticket has no description to analyse")
        started = time.perf_counter()
        words = terms(" ".join([ticket.description, *ticket.tags]))
        critical = find_critical(words)
        answer = _escalation(critical) if critical else self._answer(words)
        if record is not None:
            latency = (time.perf_counter() - started) * 1000
            record(agent=self.name, ok=True, latency_ms=latency, attempts=1, error="")
        return answer

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every article's score for a text, best first (ties by id); for tuning and tests."""
        return [(s.article.id, round(s.score, 3)) for s in self._score(terms(text))]

    def _score(self, words: list[Term]) -> list[_Scored]:
        sequence = tuple(t.stem for t in words)
        results = []
        for entry in self._index:
            scored = _Scored(entry.article, 0.0)
            seen: set[str] = set()
            for term in words:
                if term.stem in seen or term.stem not in entry.vocabulary:
                    continue
                seen.add(term.stem)
                weight = 1.0 if term.stem in entry.singles else PARTIAL_WEIGHT
                scored.score += self._idf[term.stem] * weight
                scored.words.append(term.surface)
            for phrase in entry.phrases:
                if contains_phrase(sequence, phrase):
                    scored.score += PHRASE_BONUS * sum(self._idf[s] for s in phrase)
            results.append(scored)
        results.sort(key=lambda s: (-s.score, s.article.id))
        return results

    def _answer(self, words: list[Term]) -> AgentAnswer:
        ranked = self._score(words)
        best = ranked[0]
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        if best.score <= 0:
            return AgentAnswer(
                confidence=0.0,
                recommended_action=Recommendation.REQUEST_CLARIFICATION,
                reasoning="No KB article matched any word of the request.",
                category="other",
                severity="low",
                suggested_team=team_for("other"),
            )
        confidence = confidence_from(best.score, runner_up)
        article = best.article
        if confidence < UNSURE:
            action = Recommendation.REQUEST_CLARIFICATION
        elif article.self_service and confidence >= CONFIDENT:
            action = Recommendation.AUTO_RESOLVE
        else:
            # IT must act, or the match is not sure enough to fix alone: the team
            # gets the ticket with the article as a suggestion.
            action = Recommendation.ASSIGN_TO_TEAM
        return AgentAnswer(
            confidence=confidence,
            recommended_action=action,
            reasoning=_explain(best, ranked[1] if len(ranked) > 1 else None, confidence),
            category=article.category,
            severity=article.severity,
            complexity=article.complexity,
            suggested_team=article.team,
            steps=article.steps,
            estimated_time=article.estimated_time,
            success_probability=article.success_probability,
            source=article.id,
        )


def confidence_from(best: float, runner_up: float) -> float:
    """Confidence in 0..1 from the best score and the runner-up's.

    Args:
        best: the top article's score (>= 0).
        runner_up: the second article's score (<= best).

    Returns:
        0 when nothing matched; near 1 for a high score far ahead of the next.
    """
    if best <= 0:
        return 0.0
    strength = 1 / (1 + math.exp(-(best - MID_SCORE) / SCORE_SCALE))
    margin = max(0.0, min(1.0, (best - runner_up) / best))
    return round(strength * (0.5 + 0.5 * margin), 3)


def _index(article: Article) -> _Indexed:
    keywords = {stems(k) for k in article.keywords}
    singles = frozenset(k[0] for k in keywords if len(k) == 1)
    phrases = tuple(sorted(k for k in keywords if len(k) > 1))
    vocabulary = singles | {s for p in phrases for s in p}
    return _Indexed(article, singles, phrases, frozenset(vocabulary))


def _explain(best: _Scored, runner_up: _Scored | None, confidence: float) -> str:
    words = ", ".join(f"'{w}'" for w in best.words[:6])
    if runner_up is not None and runner_up.score > 0:
        nxt = f"next best {runner_up.score:.1f}, '{runner_up.article.title}'"
    else:
        nxt = "no other article matched"
    matched = f"KB article '{best.article.title}' on {words} (score {best.score:.1f}, {nxt})"
    if confidence < UNSURE:
        return f"Only a weak match: {matched}; more detail is needed."
    if runner_up is not None and runner_up.score >= 0.75 * best.score:
        return f"Matched {matched}; the two are close, so a person should confirm."
    return f"Matched {matched}."


def _escalation(match: CriticalMatch) -> AgentAnswer:
    kind = match.kind
    words = ", ".join(f"'{w}'" for w in match.words)
    return AgentAnswer(
        confidence=CRITICAL_CONFIDENCE,
        recommended_action=Recommendation.ESCALATE,
        reasoning=(
            f"The request mentions {words}: a possible {kind.name}, escalated to {kind.team}."
        ),
        category=kind.category,
        severity="critical",
        complexity="high",
        suggested_team=kind.team,
        steps=kind.steps,
        estimated_time="immediate response",
        success_probability=0.0,
        source=f"critical:{kind.name.replace(' ', '_')}",
    )
