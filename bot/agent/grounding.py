"""What the LLM agent takes from the embedded knowledge base: two narrow questions.

"Which articles fit this text best?" (for the prompt) and "is this text critical?"
(checked before the model is asked, and it wins). Everything the LLM agent knows of
the knowledge base passes through this module, so when the embedded agent changes
only these two functions need rewiring.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.agent.kb import KnowledgeBaseAgent

MIN_OFFERED = 0.01


@dataclass(frozen=True)
class ArticleBrief:
    """One knowledge-base article as the model sees it."""

    id: str
    title: str
    steps: tuple[str, ...]
    team: str
    # True: the requester can follow the steps alone (the only kind that may be auto-resolved).
    self_service: bool
    success_probability: float
    estimated_time: str = ""


@dataclass(frozen=True)
class CriticalHit:
    """A request a human must see now, whatever the model would say."""

    kind: str
    reason: str
    # Who handles this kind, its category and the safety advice for the requester;
    # an escalation needs an addressee, and the advice cannot wait for the team.
    team: str
    category: str
    steps: tuple[str, ...] = ()


class KnowledgeBase:
    """The embedded knowledge base, behind the two calls the LLM agent makes."""

    def __init__(self, agent: KnowledgeBaseAgent | None = None) -> None:
        """Index the articles once.

        Args:
            agent: the embedded agent whose articles, ranking and critical detector to
                use; default the shipped articles (`build_agent` passes KB_DIR's too).
        """
        self._agent = agent or KnowledgeBaseAgent()
        self._articles = {article.id: article for article in self._agent.articles}

    def top_articles(self, text: str, limit: int) -> tuple[ArticleBrief, ...]:
        """The articles that fit a request best, best first; none that do not fit at all.

        Args:
            text: the request.
            limit: at most this many articles.

        Returns:
            Up to `limit` articles the classifier gives a real chance, best first.
        """
        # The classifier gives every article some probability; offering the model ones
        # it rates below 1% would only invite it to pick a wrong one.
        ranked = [s.article for s in self._agent.suggest(text, limit=limit)
                  if s.confidence >= MIN_OFFERED]
        return tuple(_brief(article) for article in ranked)

    def critical(self, text: str) -> CriticalHit | None:
        """Whether a request names a security incident, data loss or an outage.

        Args:
            text: the request.

        Returns:
            The hit (kind, why, who handles it), or None.
        """
        match = self._agent.critical.detect(text)
        if match is None:
            return None
        kind = match.kind
        return CriticalHit(
            kind=kind.name,
            reason=match.reason,
            team=kind.team,
            category=kind.category,
            steps=kind.steps,
        )


def _brief(article) -> ArticleBrief:
    return ArticleBrief(
        id=article.id,
        title=article.title,
        steps=article.steps,
        team=article.team,
        self_service=article.self_service,
        success_probability=article.success_probability,
        estimated_time=article.estimated_time,
    )
