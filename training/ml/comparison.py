"""Is one version better than another on the same prompts? Paired bootstrap intervals of metric differences.

Plain numpy, no Django: the caller lines up the two versions' per-prompt scores (same held-out prompt,
same position) and gets, per metric, the mean difference (candidate - baseline) with a percentile
bootstrap interval over prompts. Pairing removes the between-prompt spread that dominates J's standard
error on a few hundred prompts, so real differences show sooner and noise is called noise.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

COMPARED_METRICS = ("j", "sta", "sim", "fl")


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    delta: float  # mean over prompts of candidate - baseline
    low: float  # confidence interval of the mean difference
    high: float

    @property
    def significant_drop(self) -> bool:
        return self.high < 0

    @property
    def significant_gain(self) -> bool:
        return self.low > 0


@dataclass(frozen=True)
class PairedComparison:
    n: int  # prompts both versions were scored on
    resamples: int
    seed: int
    confidence: float
    deltas: dict[str, MetricDelta]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["deltas"] = {name: asdict(d) for name, d in self.deltas.items()}
        return data


def paired_bootstrap(
    candidate: Sequence[Mapping[str, float]],
    baseline: Sequence[Mapping[str, float]],
    *,
    metrics: Sequence[str] = COMPARED_METRICS,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedComparison:
    """Mean candidate - baseline per metric with a percentile-bootstrap interval, resampling prompts.

    ``candidate[i]`` and ``baseline[i]`` are the two versions' scores on the same prompt. The same
    inputs and seed always give the same interval. Raises ``ValueError`` for unequal or empty inputs.
    """
    if len(candidate) != len(baseline):
        raise ValueError(f"{len(candidate)} candidate rows but {len(baseline)} baseline rows")
    if not candidate:
        raise ValueError("no shared prompts to compare on")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError("resamples must be >= 1 and confidence in (0, 1)")
    diffs = np.array([[float(c[m]) - float(b[m]) for m in metrics] for c, b in zip(candidate, baseline)])
    n = len(diffs)
    rng = np.random.default_rng(seed)
    means = np.empty((resamples, len(metrics)))
    chunk = max(1, 2_000_000 // n)  # bounded memory for large held-out splits
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        means[start : start + size] = diffs[rng.integers(0, n, size=(size, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, alpha, axis=0), np.quantile(means, 1 - alpha, axis=0)
    deltas = {
        m: MetricDelta(metric=m, delta=float(diffs[:, k].mean()), low=float(low[k]), high=float(high[k]))
        for k, m in enumerate(metrics)
    }
    return PairedComparison(n=n, resamples=resamples, seed=seed, confidence=confidence, deltas=deltas)
