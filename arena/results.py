"""Arena statistics: win rates and Bayesian Bradley–Terry ratings with credible intervals.

Plain Python and numpy, no Django: versions are any labels (the platform passes version names),
outcomes are ``(winner, loser)`` pairs and ``(a, b)`` ties. A tie counts as half a win each way.

Ratings are the posterior mode under a prior of ``prior`` virtual ties between every two versions
(a proper prior on each pair's log-odds), and intervals come from the Laplace approximation of that
posterior (the inverse of its curvature at the mode). A percentile bootstrap over judgements cannot
do this job: a 6–0 record resamples to 6–0 every time and gives a zero-width interval, certainty
that six games do not hold.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist

import numpy as np

ELO_SCALE = 400 / math.log(10)  # 400 rating points = 10:1 odds, as in chess and Chatbot Arena
ELO_CENTRE = 1000.0


@dataclass(frozen=True)
class Standing:
    """One version's record and rating (Elo scale: mean of all versions is 1000)."""

    version: Hashable
    rating: float
    ci_low: float | None
    ci_high: float | None
    wins: int
    losses: int
    ties: int
    judgements: int
    win_rate: float | None  # (wins + ties / 2) / judgements; None without judgements


@dataclass(frozen=True)
class ArenaResults:
    standings: list[Standing]  # best rating first
    win_rates: dict[Hashable, dict[Hashable, float | None]]  # row beats column (ties half); None if never met
    pair_judgements: dict[Hashable, dict[Hashable, int]]
    judgements: int
    ties: int
    confidence: float
    prior: float = field(default=1.0)
    interval: str = "laplace"  # how ci_low/ci_high were computed

    def as_dict(self) -> dict:
        return asdict(self)


def fit_bradley_terry(wins: np.ndarray, *, prior: float = 1.0, tol: float = 1e-9, max_iter: int = 10_000) -> np.ndarray:
    """Log-strengths (mean 0) maximising the Bradley–Terry likelihood of ``wins[i, j]`` (i beat j).

    Hunter's (2004) MM updates. ``prior`` virtual ties between every two versions keep strengths
    finite when a version never won (or never lost) and shrink small samples towards equality.
    """
    k = wins.shape[0]
    w = wins.astype(float) + (prior / 2) * (1 - np.eye(k))
    games = w + w.T
    won = w.sum(axis=1)
    p = np.ones(k)
    for _ in range(max_iter):
        denominator = (games / (p[:, None] + p[None, :])).sum(axis=1)
        updated = np.where(denominator > 0, won / np.where(denominator > 0, denominator, 1), p)
        updated = np.where(updated > 0, updated, 1e-12)  # a version that never played without prior
        updated /= math.exp(np.log(updated).mean())
        if np.max(np.abs(np.log(updated) - np.log(p))) < tol:
            p = updated
            break
        p = updated
    log_p = np.log(p)
    return log_p - log_p.mean()


def posterior_sd(wins: np.ndarray, log_strengths: np.ndarray, *, prior: float = 1.0) -> np.ndarray:
    """Laplace approximation: standard deviation of each centred log-strength at the posterior mode.

    The curvature of the log-posterior is the Fisher information of the Bradley–Terry likelihood with
    the prior's virtual games included (a graph Laplacian weighted by games * p * (1 - p)); its
    pseudo-inverse is the covariance of the strengths on the mean-zero plane.
    """
    k = wins.shape[0]
    w = wins.astype(float) + (prior / 2) * (1 - np.eye(k))
    games = w + w.T
    p = 1.0 / (1.0 + np.exp(-(log_strengths[:, None] - log_strengths[None, :])))
    weight = games * p * (1 - p)
    np.fill_diagonal(weight, 0.0)
    information = np.diag(weight.sum(axis=1)) - weight
    covariance = np.linalg.pinv(information, hermitian=True)
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None))


def _index(versions: Iterable[Hashable] | None, wins: Sequence, ties: Sequence) -> dict[Hashable, int]:
    order: dict[Hashable, int] = {}
    for label in list(versions or []) + [v for pair in list(wins) + list(ties) for v in pair]:
        order.setdefault(label, len(order))
    return order


def compute_results(
    wins: Sequence[tuple[Hashable, Hashable]],
    ties: Sequence[tuple[Hashable, Hashable]] = (),
    *,
    versions: Iterable[Hashable] | None = None,
    confidence: float = 0.95,
    prior: float = 1.0,
) -> ArenaResults:
    """Records, pairwise win rates and Bayesian Bradley–Terry ratings with ``confidence`` intervals.

    ``prior`` > 0 virtual ties per pair keep every rating finite and every interval open (a 6–0
    record is strong but not certain evidence); more games narrow the interval. ``versions`` lists
    versions to report even without judgements; such a version keeps the prior's rating and has no
    interval (None). Deterministic: the same judgements give the same numbers.
    """
    for a, b in list(wins) + list(ties):
        if a == b:
            raise ValueError(f"a version cannot play itself: {a!r}")
    index = _index(versions, wins, ties)
    labels = list(index)
    k = len(labels)
    # Each distinct outcome is one category; a bootstrap sample is a multinomial draw over them.
    outcomes: dict[tuple[int, int, bool], int] = {}
    for a, b in wins:
        key = (index[a], index[b], False)
        outcomes[key] = outcomes.get(key, 0) + 1
    for a, b in ties:
        i, j = sorted((index[a], index[b]))
        outcomes[(i, j, True)] = outcomes.get((i, j, True), 0) + 1
    keys = list(outcomes)
    counts = np.array([outcomes[key] for key in keys], dtype=float)
    contribution = np.zeros((len(keys), k, k))
    for n, (i, j, tie) in enumerate(keys):
        if tie:
            contribution[n, i, j] = contribution[n, j, i] = 0.5
        else:
            contribution[n, i, j] = 1.0
    win_matrix = np.tensordot(counts, contribution, axes=1) if keys else np.zeros((k, k))
    log_strengths = fit_bradley_terry(win_matrix, prior=prior) if k else np.zeros(0)
    ratings = ELO_CENTRE + ELO_SCALE * log_strengths

    total = int(counts.sum())
    low = high = [None] * k
    if total and k:
        half_width = NormalDist().inv_cdf(0.5 + confidence / 2) * ELO_SCALE * posterior_sd(win_matrix, log_strengths, prior=prior)
        low = [float(x) for x in ratings - half_width]
        high = [float(x) for x in ratings + half_width]

    met = np.zeros((k, k), dtype=int)
    record = np.zeros((k, 3), dtype=int)  # wins, losses, ties
    for (i, j, tie), n in outcomes.items():
        met[i, j] += n
        met[j, i] += n
        if tie:
            record[i, 2] += n
            record[j, 2] += n
        else:
            record[i, 0] += n
            record[j, 1] += n

    standings = [
        Standing(
            version=label,
            rating=float(ratings[i]),
            ci_low=low[i] if record[i].sum() else None,  # a prior-only rating has no interval worth showing
            ci_high=high[i] if record[i].sum() else None,
            wins=int(record[i, 0]),
            losses=int(record[i, 1]),
            ties=int(record[i, 2]),
            judgements=int(record[i].sum()),
            win_rate=float((record[i, 0] + record[i, 2] / 2) / record[i].sum()) if record[i].sum() else None,
        )
        for i, label in enumerate(labels)
    ]
    standings.sort(key=lambda s: -s.rating)
    return ArenaResults(
        standings=standings,
        win_rates={
            a: {b: (float(win_matrix[i, j] / met[i, j]) if met[i, j] else None) for j, b in enumerate(labels) if i != j}
            for i, a in enumerate(labels)
        },
        pair_judgements={a: {b: int(met[i, j]) for j, b in enumerate(labels) if i != j} for i, a in enumerate(labels)},
        judgements=total,
        ties=sum(n for (_, _, tie), n in outcomes.items() if tie),
        confidence=confidence,
        prior=prior,
    )
