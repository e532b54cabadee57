"""Requests a person must see now, however they are worded: the critical detector.

Four kinds: security incidents (a phishing link clicked, credentials typed into a fake
page, an account used by someone else, malware or ransomware), lost or stolen devices,
deleted or lost data, and outages that stop many people or customers.

Two signals, either one enough:

- a classifier learned from labelled examples (bot/agent/data/training.yaml) against
  the articles' own examples and the out-of-scope ones, so "my laptop got nicked from
  my bag" is caught without the word "stolen";
- word rules, the floor under what is learned: a request that says "ransomware" or
  "phishing" is escalated whatever the classifier thinks.

`CriticalDetector.detect()` runs on its own (the LLM agent calls it before its model),
and every match says in words why it was raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from scipy.sparse import csr_matrix

from bot.agent.articles import Article, shipped_articles
from bot.agent.classifier import TextClassifier, TextFeatures
from bot.agent.examples import training_examples
from bot.agent.textmatch import Term, contains_phrase, stems, terms

NOT_CRITICAL = "(not critical)"


@dataclass(frozen=True)
class CriticalKind:
    """One kind of critical ticket and who handles it."""

    key: str  # the label in bot/agent/data/training.yaml
    name: str
    category: str
    team: str
    phrases: tuple[tuple[str, ...], ...]
    steps: tuple[str, ...]


def _phrases(*texts: str) -> tuple[tuple[str, ...], ...]:
    return tuple(stems(text) for text in texts)


# In priority order: when a request has rule words of two kinds, the first kind wins.
KINDS: tuple[CriticalKind, ...] = (
    CriticalKind(
        key="security",
        name="security incident",
        category="security",
        team="Security",
        phrases=_phrases(
            "security", "hacked", "hacker", "phishing", "phish", "ransomware", "malware",
            "virus", "trojan", "spyware", "breach", "breached", "compromised", "leaked",
            "leak", "suspicious email", "suspicious link", "suspicious login",
            "suspicious sign in", "ransom", "scam", "fake login", "fake page", "fake site",
            "fake website", "fake email", "keylogger", "spoofed", "spoofing", "impersonating",
            "impersonation", "smishing", "vishing", "identity theft",
        ),
        steps=(
            "Do not click links, open attachments or enter your password anywhere "
            "until Security answers.",
            "If you think your device is infected, disconnect it from the network "
            "(Wi-Fi off, cable out) but leave it switched on.",
            "If you typed your password into a suspicious page, change it now from another device.",
            "Do not delete the suspicious email or file: Security needs it to investigate.",
        ),
    ),
    CriticalKind(
        key="lost_device",
        name="lost or stolen device",
        category="security",
        team="Security",
        phrases=_phrases(
            "stolen", "stole", "theft", "lost laptop", "lost phone", "lost work phone",
            "lost mobile", "lost ipad", "lost tablet", "lost computer", "laptop missing",
            "phone missing", "robbery", "burgled", "burglary", "pickpocketed",
            "pickpocket", "snatched",
        ),
        steps=(
            "Tell us when and where you last had the device, and whether it was locked.",
            "Security can lock and wipe it remotely; do not wait to see if it turns up.",
            "Change your password from another device, and tell us if anything on it "
            "was unencrypted or written down.",
            "If it was stolen, report it to the police and keep the reference number.",
        ),
    ),
    CriticalKind(
        key="data_loss",
        name="data loss",
        category="storage",
        team="Infrastructure",
        phrases=_phrases(
            "data loss", "lost data", "lost files", "files lost", "deleted files",
            "files deleted", "files disappeared", "files gone", "lost all my work",
            "folder deleted", "deleted folder",
        ),
        steps=(
            "Stop working in the affected folder or drive, so nothing overwrites what "
            "can still be recovered.",
            "Check the Recycle Bin / Trash and OneDrive's or SharePoint's own recycle bin first.",
            "Note the exact path, the file names and when you last saw them; "
            "Infrastructure restores from backups by time.",
        ),
    ),
    CriticalKind(
        key="outage",
        name="outage",
        category="network",
        team="Infrastructure",
        phrases=_phrases(
            "outage", "down for everyone", "down for everybody", "everyone is down",
            "whole office", "entire office", "whole company", "entire company",
            "whole team can't", "server is down", "system is down", "network is down",
            "website is down", "site is down",
        ),
        steps=(
            "Check the IT status page or the incidents channel: the outage may already be known.",
            "Note what is down, since when, and who is affected (your team, floor, office).",
            "Use the documented fallback for the service (webmail, phone bridge) "
            "until it is restored.",
        ),
    ),
)
KIND_BY_KEY = {kind.key: kind for kind in KINDS}

# "security" on its own is a security signal, but not in these everyday phrases:
# an MFA "security code" or a "security group" for a shared drive is no incident.
_BENIGN_AFTER_SECURITY = frozenset(
    stems("code codes key keys question questions group groups info settings updates")
)


@dataclass(frozen=True)
class CriticalMatch:
    """A critical request: its kind, and what raised it."""

    kind: CriticalKind
    # The rule words found in the request (empty when only the classifier spoke).
    words: tuple[str, ...] = ()
    # The classifier's probability that the request is critical (None: rules only).
    probability: float | None = None

    @property
    def reason(self) -> str:
        """Why it was raised, in words a person reads in the "Why?"."""
        kind = self.kind
        if self.words:
            said = ", ".join(f"'{w}'" for w in self.words)
            why = f"The request mentions {said}"
        else:
            why = "The request reads like the critical examples the agent learned"
        odds = "" if self.probability is None else f" (probability critical {self.probability:.2f})"
        return f"{why}{odds}: a possible {kind.name}, escalated to {kind.team}."


def find_critical(words: list[Term]) -> CriticalMatch | None:
    """The word rules alone: the first kind whose words occur in the request.

    Args:
        words: the request's terms (see `textmatch.terms`).

    Returns:
        The match (without a probability), or None when no rule word occurs.
    """
    sequence = tuple(t.stem for t in words)
    for kind in KINDS:
        found: list[str] = []
        for phrase in kind.phrases:
            if not contains_phrase(sequence, phrase) or _benign(sequence, phrase):
                continue
            found.append(" ".join(_surface(words, phrase)))
        if found:
            return CriticalMatch(kind=kind, words=tuple(dict.fromkeys(found)))
    return None


class CriticalDetector:
    """Learned from labelled examples, with the word rules as a floor."""

    def __init__(
        self, articles: Sequence[Article] | None = None, *, features: TextFeatures | None = None
    ) -> None:
        """Fit the classifier: critical kinds against everything that is not critical.

        Args:
            articles: whose examples are the everyday requests; default the shipped ones.
            features: fitted features to share with another classifier (the knowledge
                base's); by default the detector fits its own, once per process.
        """
        articles = tuple(articles) if articles is not None else shipped_articles()
        self._classifier = _fit(articles) if features is None else _train(articles, features)

    def detect(self, text: str, *, row: csr_matrix | None = None) -> CriticalMatch | None:
        """Whether a request is critical, and which kind.

        Args:
            text: the request as the person wrote it.
            row: the text already turned into the shared features, if it was.

        Returns:
            The match, or None for an everyday request.
        """
        ranked = self._classifier.rank(text) if row is None else self._classifier.rank_features(row)
        probability = round(sum(r.probability for r in ranked if r.label != NOT_CRITICAL), 6)
        ruled = find_critical(terms(text))
        if ruled is not None:
            return CriticalMatch(kind=ruled.kind, words=ruled.words, probability=probability)
        # More likely critical than not: the plain Bayes decision, not a tuned cut-off.
        if probability <= 0.5:
            return None
        likeliest = next(r.label for r in ranked if r.label != NOT_CRITICAL)
        return CriticalMatch(kind=KIND_BY_KEY[likeliest], probability=probability)


def training_set(articles: Sequence[Article]) -> tuple[list[str], list[str]]:
    """The detector's phrasings and labels: each critical kind, and everything else.

    Everyday requests are the articles' examples, the shipped articles' too even when
    KB_SHIPPED=false leaves them out of the answers: a company's three articles alone
    would teach the detector too little of what a calm request looks like.
    """
    shipped = training_examples()
    texts = [text for _, text in shipped.critical]
    labels = [kind for kind, _ in shipped.critical]
    library = {a.id: a for a in shipped_articles()} | {a.id: a for a in articles}
    everyday = [e for article in library.values() for e in article.examples] + list(shipped.out_of_scope)
    return [*texts, *everyday], [*labels, *[NOT_CRITICAL] * len(everyday)]


@lru_cache(maxsize=4)
def _fit(articles: tuple[Article, ...]) -> TextClassifier:
    # Cached by the articles themselves, so every detector of a process shares one fit.
    texts, _ = training_set(articles)
    return _train(articles, TextFeatures(texts))


def _train(articles: tuple[Article, ...], features: TextFeatures) -> TextClassifier:
    texts, labels = training_set(articles)
    return TextClassifier(features, texts, labels, class_weight=equal_priors(labels))


def equal_priors(labels: Sequence[str]) -> dict[str, float]:
    """Weights under which critical and everyday requests count the same in total.

    How many phrasings the data files hold on each side is an accident of writing them
    (everyday ones are every article's examples, over three times the critical ones);
    unweighted, that count would act as a prior and win every doubtful request for
    "not critical". Weighted, half the weight is everyday and half critical, split
    evenly between the kinds, so `detect`'s "more likely critical than not" weighs the
    request's words alone.

    Args:
        labels: the detector's label per phrasing (NOT_CRITICAL or a kind's key).

    Returns:
        A weight per label: the phrasings of each side add up to half the total.
    """
    counts = Counter(labels)
    kinds = [label for label in counts if label != NOT_CRITICAL]
    total = len(labels)
    weights = {kind: total / (2 * len(kinds) * counts[kind]) for kind in kinds}
    weights[NOT_CRITICAL] = total / (2 * counts[NOT_CRITICAL])
    return weights


def _benign(sequence: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    if phrase != ("security",):
        return False
    positions = [i for i, stem in enumerate(sequence) if stem == "security"]
    return all(
        i + 1 < len(sequence) and sequence[i + 1] in _BENIGN_AFTER_SECURITY for i in positions
    )


def _surface(words: list[Term], phrase: tuple[str, ...]) -> list[str]:
    sequence = [t.stem for t in words]
    width = len(phrase)
    for i in range(len(sequence) - width + 1):
        if tuple(sequence[i : i + width]) == phrase:
            return [t.surface for t in words[i : i + width]]
    return list(phrase)
