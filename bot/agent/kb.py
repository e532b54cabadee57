"""The embedded agent: which knowledge-base article answers a request, and how sure it is.

Built once per process from the articles' own example phrasings (and the shipped
out-of-scope and critical examples, learned as "none of the articles"), with the
calibrated classifier of `bot/agent/classifier.py`. Its confidence is the probability
that the named article is the one that answers the request, so the policy's bands
(AUTONOMY_THRESHOLD and below) are the only thresholds: the agent always names what it
would do with the best article, and the policy decides whether the bot may.

Each decision:
1. the critical detector (learned, with word rules as a floor): a match is escalated;
2. otherwise the classifier ranks the articles and "none of them"; the best article is
   recommended (auto-resolve if self-service, else its team), or, when "none" ranks
   first, the agent asks for detail.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.agent.answer import AgentAnswer, CallRecorder, Recommendation, TicketInput
from bot.agent.articles import Article, load_articles, shipped_articles
from bot.agent.classifier import Ranked, TextClassifier, TextFeatures
from bot.agent.critical import CriticalDetector, CriticalMatch
from bot.agent.examples import training_examples
from bot.agent.routing import team_for

NO_ARTICLE = "(no article)"


@dataclass(frozen=True)
class Suggestion:
    """An article and the probability that it answers the request."""

    article: Article
    confidence: float


class KnowledgeBaseAgent:
    """Answers from knowledge-base articles; needs no network."""

    name = "knowledge_base"

    def __init__(
        self, articles: Sequence[Article] | None = None, *, directory: Path | None = None
    ) -> None:
        """Fit the classifiers (once per set of articles in a process).

        Args:
            articles: the articles to answer from; default the shipped ones.
            directory: read the articles from this folder instead.

        Raises:
            KnowledgeBaseError: the folder's articles are broken.
        """
        if articles is None:
            articles = shipped_articles() if directory is None else load_articles(directory)
        self.articles = tuple(sorted(articles, key=lambda a: a.id))
        self._by_id = {a.id: a for a in self.articles}
        self._features, self._ranker, self.critical = _fit(self.articles)

    def analyse(self, ticket: TicketInput, *, record: CallRecorder | None = None) -> AgentAnswer:
        """Decide on a ticket from its description (and tags).

        Args:
            ticket: the ticket; its description must not be blank.
            record: told once about the call (it never fails once started).

        Returns:
            The answer; `source` is the article's id, `critical:<kind>` for an
            escalation, or "" when no article fits.

        Raises:
            ValueError: the description is empty or only whitespace.
        """
        if not ticket.description or not ticket.description.strip():
            raise ValueError("the ticket has no description to analyse")
        started = time.perf_counter()
        text = " ".join([ticket.description, *ticket.tags])
        row = self._features.transform([text])
        critical = self.critical.detect(text, row=row)
        answer = _escalation(critical) if critical else self._answer(self._ranker.rank_features(row))
        if record is not None:
            latency = (time.perf_counter() - started) * 1000
            record(agent=self.name, ok=True, latency_ms=latency, attempts=1, error="")
        return answer

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every article's id and confidence for a text, best first (ties by id).

        The probabilities of "no article" are left out, so they add up to 1 or less.
        """
        return [(s.article.id, s.confidence) for s in self.suggest(text, limit=None)]

    def suggest(self, text: str, *, limit: int | None = 3) -> list[Suggestion]:
        """The articles most likely to answer a text, with their confidence.

        Args:
            text: the request.
            limit: how many (None: all of them).

        Returns:
            Best first; for `resolvemeq kb test` and the LLM agent's prompt.
        """
        ranked = [
            Suggestion(self._by_id[r.label], r.probability)
            for r in self._ranker.rank(text)
            if r.label != NO_ARTICLE
        ]
        return ranked if limit is None else ranked[:limit]

    def _answer(self, ranked: list[Ranked]) -> AgentAnswer:
        articles = [r for r in ranked if r.label != NO_ARTICLE]
        best = self._by_id[articles[0].label]
        confidence = articles[0].probability
        runner_up = (
            f"; next '{self._by_id[articles[1].label].title}' at {articles[1].probability:.2f}"
            if len(articles) > 1 else ""
        )
        if ranked[0].label == NO_ARTICLE:
            return AgentAnswer(
                confidence=confidence,
                recommended_action=Recommendation.REQUEST_CLARIFICATION,
                reasoning=(
                    "No KB article fits: the request is too vague to tell or about something "
                    f"the knowledge base does not cover (closest '{best.title}' at {confidence:.2f})."
                ),
                category="other",
                severity="low",
                suggested_team=team_for("other"),
            )
        # No threshold here: the policy's bands decide what this confidence allows.
        action = Recommendation.AUTO_RESOLVE if best.self_service else Recommendation.ASSIGN_TO_TEAM
        return AgentAnswer(
            confidence=confidence,
            recommended_action=action,
            reasoning=f"KB article '{best.title}' fits with probability {confidence:.2f}{runner_up}.",
            category=best.category,
            severity=best.severity,
            complexity=best.complexity,
            suggested_team=best.team,
            steps=best.steps,
            estimated_time=best.estimated_time,
            success_probability=best.success_probability,
            source=best.id,
        )


@lru_cache(maxsize=4)
def _fit(articles: tuple[Article, ...]) -> tuple[TextFeatures, TextClassifier, CriticalDetector]:
    # Once per set of articles in a process: every Runtime (and test) shares the fit.
    shipped = training_examples()
    texts = [e for a in articles for e in a.examples]
    labels = [a.id for a in articles for _ in a.examples]
    # Requests no article answers are learned as such, critical ones included, so that
    # a critical request the detector missed still borrows no article's confidence; so
    # are the topics of shipped articles left out (KB_SHIPPED=false), which the company
    # does not want answered.
    offered = {a.id for a in articles}
    left_out = [e for a in shipped_articles() if a.id not in offered for e in a.examples]
    unanswered = [*shipped.out_of_scope, *(text for _, text in shipped.critical), *left_out]
    features = TextFeatures([*texts, *unanswered])
    # Balanced: "no article" has several times more phrasings than any article, and its
    # prior would otherwise pull every article's probability down.
    ranker = TextClassifier(
        features, [*texts, *unanswered], [*labels, *[NO_ARTICLE] * len(unanswered)],
        class_weight="balanced",
    )
    return features, ranker, CriticalDetector(articles, features=features)


def _escalation(match: CriticalMatch) -> AgentAnswer:
    kind = match.kind
    return AgentAnswer(
        confidence=match.probability if match.probability is not None else 1.0,
        recommended_action=Recommendation.ESCALATE,
        reasoning=match.reason,
        category=kind.category,
        severity="critical",
        complexity="high",
        suggested_team=kind.team,
        steps=kind.steps,
        estimated_time="immediate response",
        success_probability=0.0,
        source=f"critical:{kind.key}",
    )
