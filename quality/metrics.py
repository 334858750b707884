"""Annotation-quality statistics as plain functions: Krippendorff's alpha, pairwise agreement,
position bias and medians. No Django here; ``quality.services`` feeds them from the database.

A *unit* is one annotated item; its values are what each annotator answered (a chosen candidate
id, ``"none"`` for "none acceptable", ...). Missing answers (skips) are simply absent.
"""
from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

try:  # scipy gives the chi-square p-value; without it the statistic is still reported
    from scipy.stats import chi2
except ImportError:  # pragma: no cover - scipy arrives with scikit-learn in the normal install
    chi2 = None

Unit = Iterable[Hashable | None] | Mapping[Hashable, Hashable | None]


def _values(unit: Unit) -> list[Hashable]:
    values = unit.values() if isinstance(unit, Mapping) else unit
    return [v for v in values if v is not None]


def krippendorff_alpha_nominal(units: Iterable[Unit]) -> float | None:
    """Krippendorff's alpha for nominal data with missing values.

    Each unit is the values its coders gave (a list, or a coder → value mapping; ``None`` means
    missing). Units with fewer than two values cannot be paired and are ignored. Returns ``None``
    where alpha is undefined: no pairable unit, or one value everywhere (nothing to disagree on).
    1 is perfect agreement, 0 agreement at chance level, below 0 systematic disagreement.
    """
    coincidences: Counter[tuple[Hashable, Hashable]] = Counter()
    for unit in units:
        counts = Counter(_values(unit))
        m = sum(counts.values())
        if m < 2:
            continue
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                coincidences[c, k] += (n_c * (n_k - 1) if c == k else n_c * n_k) / (m - 1)
    marginals: Counter[Hashable] = Counter()
    for (c, _), count in coincidences.items():
        marginals[c] += count
    n = sum(marginals.values())
    disagreeing = sum(count for (c, k), count in coincidences.items() if c != k)
    expected = n * n - sum(n_c * n_c for n_c in marginals.values())  # sum of n_c * n_k over c != k
    if n == 0 or expected <= 0:
        return None
    return 1 - (n - 1) * disagreeing / expected


@dataclass(frozen=True)
class Agreement:
    """Pairs of answers to the same unit that were compared, and how many matched."""

    agreeing: int
    compared: int

    @property
    def rate(self) -> float | None:
        return self.agreeing / self.compared if self.compared else None


def pairwise_agreement(units: Iterable[Unit]) -> Agreement:
    """Observed agreement: the share of pairs of answers to the same unit that are equal."""
    agreeing = compared = 0
    for unit in units:
        for a, b in combinations(_values(unit), 2):
            compared += 1
            agreeing += a == b
    return Agreement(agreeing, compared)


def agreement_by_coder(units: Iterable[Mapping[Hashable, Hashable | None]]) -> dict[Hashable, Agreement]:
    """For each coder, how often their answer matched each other coder's answer on the same unit.

    Coders who never shared a unit with another coder get ``Agreement(0, 0)`` (rate ``None``).
    """
    totals: dict[Hashable, list[int]] = {}
    for unit in units:
        answers = {coder: value for coder, value in unit.items() if value is not None}
        for coder, value in answers.items():
            tally = totals.setdefault(coder, [0, 0])
            for other, other_value in answers.items():
                if other != coder:
                    tally[0] += value == other_value
                    tally[1] += 1
    return {coder: Agreement(agreeing, compared) for coder, (agreeing, compared) in totals.items()}


@dataclass(frozen=True)
class PositionShare:
    """How often one shown position won, against what random choice would give."""

    position: int
    wins: int
    expected: float  # wins by chance: the sum of 1/shown over choices that showed this position

    @property
    def ratio(self) -> float | None:
        """Wins over chance: 1 is unbiased, 3 with three candidates means it always wins."""
        return self.wins / self.expected if self.expected else None


@dataclass(frozen=True)
class PositionBias:
    choices: int
    positions: tuple[PositionShare, ...]
    chi_square: float | None  # goodness of fit of wins against chance
    p_value: float | None  # None without scipy, or with a single possible position

    def share(self, position: int) -> float | None:
        """The share of choices won by ``position``."""
        found = next((p for p in self.positions if p.position == position), None)
        return found.wins / self.choices if found and self.choices else None

    def chance_share(self, position: int) -> float | None:
        """The share ``position`` would win if every choice were random."""
        found = next((p for p in self.positions if p.position == position), None)
        return found.expected / self.choices if found and self.choices else None

    @property
    def favourite(self) -> PositionShare | None:
        """The position that wins most above chance."""
        ranked = [p for p in self.positions if p.ratio is not None]
        return max(ranked, key=lambda p: (p.ratio, -p.position)) if ranked else None


def position_bias(choices: Iterable[tuple[int, int]]) -> PositionBias:
    """Wins per shown position against chance, from ``(candidates shown, chosen 1-based position)``.

    Items may show different numbers of candidates: each choice adds 1/shown to the expected wins
    of every position it showed. The chi-square statistic compares wins with those expectations
    (positions - 1 degrees of freedom, an approximation when the numbers shown differ).
    """
    wins: Counter[int] = Counter()
    expected: Counter[int] = Counter()
    total = 0
    for shown, chosen in choices:
        if not 1 <= chosen <= shown:
            raise ValueError(f"chosen position {chosen} is not between 1 and {shown}")
        total += 1
        wins[chosen] += 1
        for position in range(1, shown + 1):
            expected[position] += 1 / shown
    positions = tuple(PositionShare(p, wins[p], expected[p]) for p in sorted(expected))
    if len(positions) < 2:
        return PositionBias(total, positions, None, None)
    statistic = sum((p.wins - p.expected) ** 2 / p.expected for p in positions)
    p_value = float(chi2.sf(statistic, len(positions) - 1)) if chi2 is not None else None
    return PositionBias(total, positions, statistic, p_value)


def median(values: Iterable[float]) -> float | None:
    """The median, or ``None`` for no values."""
    values = list(values)
    return statistics.median(values) if values else None
