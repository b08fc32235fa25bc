"""The unigram reference: add-one smoothed training counts, scored like a model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewarm.evaluation import unigram


def test_add_one_probabilities_and_score():
    logp = unigram.log_probs(np.array([0, 0, 1], dtype=np.uint16), vocab_size=4)
    # counts + 1 = (3, 2, 1, 1) over 3 + 4 = 7
    assert np.exp(logp).tolist() == pytest.approx([3 / 7, 2 / 7, 1 / 7, 1 / 7])
    windows = np.array([[3, 0, 1], [1, 0, 3]])  # predicted tokens: 0, 1, 0, 3
    got = unigram.score(logp, windows, bytes_per_token=2.0)
    want = -(2 * math.log(3 / 7) + math.log(2 / 7) + math.log(1 / 7)) / 4
    assert got.nats == pytest.approx(want) and got.tokens == 4
    assert got.bits_per_byte == pytest.approx(want / math.log(2) / 2.0)


def test_a_model_of_the_right_frequencies_beats_a_uniform_one():
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.3, 0.1, 0.05, 0.05])
    train = rng.choice(5, size=20_000, p=p)
    held = rng.choice(5, size=(200, 9), p=p)
    got = unigram.score(unigram.log_probs(train, 5), held, 1.0)
    entropy = -(p * np.log(p)).sum()
    assert got.nats == pytest.approx(entropy, abs=0.03) and got.nats < math.log(5)


def test_ids_outside_the_vocabulary_are_refused():
    with pytest.raises(ValueError, match="outside"):
        unigram.log_probs(np.array([0, 7]), vocab_size=4)
