"""Paired bootstrap of metric differences between two versions on the same prompts."""
from __future__ import annotations

import random

import pytest

from training.ml.comparison import paired_bootstrap


def scores(js):
    return [{"j": j, "sta": 1.0, "sim": j, "fl": 1.0} for j in js]


def test_a_consistent_drop_is_significant_and_the_interval_holds_the_estimate():
    rng = random.Random(0)
    base = [rng.random() for _ in range(200)]
    worse = [b - 0.05 + rng.gauss(0, 0.02) for b in base]
    result = paired_bootstrap(scores(worse), scores(base), resamples=2000, seed=1)
    j = result.deltas["j"]
    assert j.low <= j.delta <= j.high < 0 and j.significant_drop
    assert result.deltas["sta"].delta == 0 and result.n == 200
    assert result == paired_bootstrap(scores(worse), scores(base), resamples=2000, seed=1)  # seeded


def test_noise_is_not_significant_and_pairing_narrows_the_interval():
    rng = random.Random(2)
    base = [rng.random() for _ in range(200)]
    same = [b + rng.gauss(0, 0.05) for b in base]
    j = paired_bootstrap(scores(same), scores(base), seed=0).deltas["j"]
    assert j.low < 0 < j.high and not j.significant_drop and not j.significant_gain
    # Far narrower than J's own spread over 200 prompts (about +-0.04 for the unpaired means).
    assert j.high - j.low < 0.03


def test_refuses_unaligned_or_empty_input():
    with pytest.raises(ValueError, match="no shared prompts"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="1 candidate rows but 2 baseline rows"):
        paired_bootstrap(scores([0.5]), scores([0.5, 0.4]))
