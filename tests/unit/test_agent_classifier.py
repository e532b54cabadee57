"""The classifier's building blocks: features computed as scikit-learn computes them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.agent.classifier import TextFeatures

LEARNED = [
    "vpn keeps dropping", "printer jammed on floor 2", "my laptop is slow and hot",
    "wifi won't connect", "outlook not syncing", "the vpn client can't reach the gateway",
]
FEATURES = TextFeatures(LEARNED)


def _same(texts: list[str]) -> None:
    ours = FEATURES.transform(texts).toarray()
    reference = FEATURES.reference_transform(texts).toarray()
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)


def test_a_request_gets_the_features_scikit_learn_would_give_it():
    _same(["my VPN keeps disconnecting!!", "printr jamed", "nothing in common here", "", "vpn vpn vpn"])


def test_learned_phrasings_reuse_their_rows_from_the_fit():
    _same(LEARNED)
    _same([LEARNED[2], LEARNED[0], LEARNED[2]])  # any order, repeats too


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=3))
def test_any_text_gets_the_features_scikit_learn_would_give_it(texts):
    _same(texts)


def test_negations_are_features_so_a_denial_reads_differently():
    from bot.agent.classifier import word_features

    assert word_features("emails I didn't send") != word_features("emails I send")
    assert "not" in word_features("the prompt was not me")


def test_weights_per_label_must_name_every_label():
    from bot.agent.classifier import TextClassifier

    texts = ["vpn drops", "vpn fails", "printer jams", "printer offline"]
    labels = ["vpn", "vpn", "printer", "printer"]
    features = TextFeatures(texts)
    weighted = TextClassifier(features, texts, labels, class_weight={"vpn": 1.0, "printer": 3.0})
    assert weighted.rank("printer jams")[0].label == "printer"
    with pytest.raises(ValueError, match="every label"):
        TextClassifier(features, texts, labels, class_weight={"vpn": 1.0})
