"""A small text classifier whose probabilities can be taken at their word.

scikit-learn, fitted in the process from labelled phrasings (no model file, no network):

- features (`TextFeatures`): TF-IDF of word stems and stem pairs (the meaning) side by
  side with TF-IDF of character 2-5-grams inside words (typos: "pasword", "outlok",
  "wify"); fitted once and shared by every classifier of the agent, so a request is
  turned into features once per decision;
- model (`TextClassifier`): a linear support vector machine, one label against the
  rest (liblinear);
- calibration: temperature scaling (Guo et al., 2017): the probabilities are a softmax
  of the SVM's margins times one factor, fitted to minimise the log loss of margins
  predicted by cross-validation, i.e. on phrasings each fold did not learn. A stated
  0.9 is then right about nine times in ten on requests like the examples;
  `bench/agent_eval.py` measures it on requests the agent never saw.

Why not `CalibratedClassifierCV(method="temperature")`: it fits the same thing, but its
`predict_proba` spends 0.4 ms per call validating input, twice per decision (articles and
critical detector), against a budget of 2 ms; the softmax below is a sparse dot product.
For the same reason a request's features are computed from the fitted vectorizers'
vocabulary and idf rather than by their `transform` (1.3 of the 1.8 ms a decision took),
and checked against it by the tests.
A logistic regression did as well as the SVM on the tuning split but took 30 to 100
times longer to fit (lbfgs at 8,000 features: 8-18 s against 0.15 s), and the agent is
fitted at every process start.

Deterministic: the folds are shuffled and liblinear seeded with a fixed seed, and ties
in the ranking are broken by label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix, vstack
from scipy.special import log_softmax, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from bot.agent.textmatch import normalise, stems

MAX_FOLDS = 3
# Inverse regularisation of the SVM (chosen on the tuning split of the evaluation set).
REGULARISATION_C = 1.0
SEED = 0
# The search range of the temperature's inverse (a factor on the margins).
_SHARPNESS = (1e-2, 1e3)


# Word families the agent should generalise over: one more feature per family present,
# so what the examples teach about some of its words carries to the others ("forgot my
# hulu password" is out of scope like the spotify, steam and paypal examples; "mail on
# my pixel" is a phone like "mail on my iphone"). Not rules: the classifier weighs them.
CONCEPTS: dict[str, frozenset[str]] = {
    # Personal and consumer services: streaming, social, gaming, shopping, banking,
    # private mail. The articles are about work accounts; never an autonomous act.
    "concept:personal_service": frozenset(stems(
        "netflix hulu disney disneyplus hbo crunchyroll twitch youtube spotify deezer tidal audible "
        "kindle facebook instagram insta tiktok snapchat reddit pinterest tinder bumble hinge "
        "xbox playstation psn nintendo steam fortnite roblox minecraft epic ebay paypal venmo etsy "
        "vinted depop deliveroo ubereats doordash airbnb strava fitbit peloton duolingo hotmail "
        "gmail yahoo aol icloud revolut monzo barclays hsbc natwest santander lloyds banking linkedin "
        "twitter whatsapp telegram discord wechat"
    )),
    # A phone or tablet, whatever its make.
    "concept:handheld": frozenset(stems(
        "phone phones iphone android mobile smartphone cellphone ipad tablet pixel galaxy samsung "
        "oneplus xiaomi huawei motorola handset ios"
    )),
}


def word_features(text: str) -> list[str]:
    """Stems, neighbouring stem pairs and word families: "vpn keeps dropping" -> vpn,
    drop, "vpn drop"; "my iphone" -> iphone, "concept:handheld".

    Negations are kept: "emails I didn't send" is not "emails I send".
    """
    words = stems(text, keep_negations=True)
    present = set(words)
    families = [name for name, members in CONCEPTS.items() if present & members]
    return [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False)), *families]


class TextFeatures:
    """Requests as sparse TF-IDF vectors, fitted on every phrasing the agent learns."""

    def __init__(self, texts: Sequence[str]) -> None:
        """Fit the vocabularies and IDF weights.

        Args:
            texts: every phrasing of every classifier that will share these features.
        """
        learned = list(dict.fromkeys(texts))
        self._union = FeatureUnion([
            ("words", TfidfVectorizer(analyzer=word_features, sublinear_tf=True)),
            ("chars", TfidfVectorizer(
                preprocessor=normalise, analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
            )),
        ])
        # The learned phrasings are turned into features once, here, for every classifier
        # fitted on them (turning a thousand phrasings into features is most of a fit).
        self._learned = csr_matrix(self._union.fit_transform(learned))
        self._row_of = {text: row for row, text in enumerate(learned)}
        self._parts = tuple(
            (vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_)
            for _, vectorizer in self._union.transformer_list
        )
        self._width = sum(len(vocabulary) for _, vocabulary, _ in self._parts)

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        """One row of features per text."""
        texts = list(texts)
        if all(text in self._row_of for text in texts):
            return self._learned[[self._row_of[text] for text in texts]]
        return csr_matrix(vstack([self._features(text) for text in texts], format="csr"))

    def reference_transform(self, texts: Sequence[str]) -> csr_matrix:
        """`transform` as scikit-learn computes it (the tests compare the two)."""
        return csr_matrix(self._union.transform(list(texts)))

    def _features(self, text: str) -> csr_matrix:
        # What each TfidfVectorizer's transform computes (sublinear tf times idf, each
        # part scaled to unit length, the parts side by side), from its fitted vocabulary
        # and idf: scikit-learn's own transform spends about 1 ms per request checking
        # its input, half the budget of a decision.
        columns: list[np.ndarray] = []
        values: list[np.ndarray] = []
        offset = 0
        for analyse, vocabulary, idf in self._parts:
            counts = Counter(vocabulary[token] for token in analyse(text) if token in vocabulary)
            if counts:
                index = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                weights = (1.0 + np.log(tf)) * idf[index]
                columns.append(index + offset)
                values.append(weights / np.sqrt(weights @ weights))
            offset += len(vocabulary)
        data = np.concatenate(values) if values else np.zeros(0)
        indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        return csr_matrix((data, indices, [0, len(data)]), shape=(1, self._width))


@dataclass(frozen=True)
class Ranked:
    """One label and its calibrated probability."""

    label: str
    probability: float


class TextClassifier:
    """Calibrated probabilities over a fixed set of labels."""

    def __init__(
        self,
        features: TextFeatures,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        c: float = REGULARISATION_C,
        class_weight: str | Mapping[str, float] | None = None,
    ) -> None:
        """Fit the SVM and its temperature.

        Args:
            features: the fitted features (see `TextFeatures`).
            texts: the training phrasings.
            labels: one label per phrasing; at least two labels, each with two phrasings.
            c: the SVM's inverse regularisation.
            class_weight: None, "balanced" to weigh each label's mistakes as much
                as every other label's, however many phrasings it has, or a weight per
                label (every label named).

        Raises:
            ValueError: fewer than two labels, a label with a single phrasing, or
                weights that leave a label out.
        """
        if len(texts) != len(labels):
            raise ValueError("texts and labels differ in length")
        names, targets = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
        counts = np.bincount(targets)
        if len(names) < 2:
            raise ValueError("a classifier needs at least two labels")
        if counts.min() < 2:
            rare = sorted(str(names[i]) for i in np.flatnonzero(counts < 2))
            raise ValueError(f"labels with a single phrasing: {', '.join(rare)}")
        self.labels: tuple[str, ...] = tuple(str(name) for name in names)
        weights: str | dict[int, float] | None
        if isinstance(class_weight, Mapping):
            if set(class_weight) != set(self.labels):
                raise ValueError("class_weight must give a weight to every label, and only to them")
            weights = {i: float(class_weight[label]) for i, label in enumerate(self.labels)}
        else:
            weights = class_weight
        self._features = features
        matrix = features.transform(texts)

        def svm() -> LinearSVC:
            return LinearSVC(C=c, class_weight=weights, random_state=SEED)

        folds = StratifiedKFold(n_splits=min(MAX_FOLDS, int(counts.min())), shuffle=True, random_state=SEED)
        held_out = _logits(cross_val_predict(svm(), matrix, targets, cv=folds, method="decision_function"))
        self._sharpness = _fit_sharpness(held_out, targets)
        model = svm().fit(matrix, targets)
        self._weights = csr_matrix(model.coef_.T)
        self._intercept = np.asarray(model.intercept_)

    def rank(self, text: str) -> list[Ranked]:
        """Every label with its probability, most likely first (ties by label).

        Args:
            text: the request.

        Returns:
            One entry per label; the probabilities add up to 1.
        """
        return self.rank_features(self._features.transform([text]))

    def rank_features(self, row: csr_matrix) -> list[Ranked]:
        """`rank` for a request already turned into features (one row)."""
        margins = np.asarray((row @ self._weights).todense()).ravel() + self._intercept
        probabilities = softmax(self._sharpness * _logits(margins[np.newaxis, :])[0])
        # Rounded before sorting, so that labels tied as shown are in label order.
        pairs = zip(self.labels, probabilities, strict=True)
        ranked = [Ranked(label, round(float(p), 6)) for label, p in pairs]
        return sorted(ranked, key=lambda r: (-r.probability, r.label))


def _logits(margins: np.ndarray) -> np.ndarray:
    # Two labels: liblinear gives one margin, for the second label against the first.
    if margins.ndim == 1:
        margins = margins[:, np.newaxis]
    if margins.shape[1] == 1:
        return np.hstack([np.zeros_like(margins), margins])
    return margins


def _fit_sharpness(logits: np.ndarray, targets: np.ndarray) -> float:
    def loss(log_sharpness: float) -> float:
        scaled = log_softmax(np.exp(log_sharpness) * logits, axis=1)
        return float(-scaled[np.arange(len(targets)), targets].mean())

    low, high = np.log(_SHARPNESS[0]), np.log(_SHARPNESS[1])
    best = minimize_scalar(loss, bounds=(low, high), method="bounded")
    return float(np.exp(best.x))
