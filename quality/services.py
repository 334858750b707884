"""Annotation quality control: gold items, and the per-annotator and per-version reports reviewers
act on (accuracy on gold, agreement, position bias, time per item, flags).

The reports read judgements in one query and compute with ``quality.metrics``; nothing here writes
except ``make_gold_item``.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet

from annotations.models import AnnotationItem, Candidate, Judgement, PreferencePair
from core.actions import ActionRefused
from core.roles import by_people
from training.models import ModelVersion

from . import metrics

logger = logging.getLogger(__name__)


def make_gold_item(*, item: AnnotationItem, candidate: Candidate, user) -> AnnotationItem:
    """Mark ``candidate`` as the known best answer of ``item`` (staff only).

    From then on the item is a gold item: it leaves the normal pool, is mixed into annotators'
    queues at ``GOLD_RATE``, its judgements add no preference pairs, and every answer to it
    (earlier ones included) counts towards the annotator's gold accuracy. Marking again replaces
    the answer.
    """
    if not (user and user.is_staff):
        raise ActionRefused("Only staff can mark gold items.", 403)
    with transaction.atomic():
        item = AnnotationItem.objects.select_for_update().select_related("prompt").get(pk=item.pk)
        if item.kind != AnnotationItem.Kind.BEST_OF_N:
            raise ActionRefused(f"Item {item.pk} is an arena match; only best-of-N items can be gold.")
        if item.prompt.is_heldout:
            raise ActionRefused(f"Item {item.pk} has a held-out prompt, kept for evaluation; it cannot be gold.")
        if candidate.item_id != item.pk:
            raise ActionRefused(f"Candidate {candidate.pk} is not one of item {item.pk}'s candidates.")
        item.gold_candidate = candidate
        item.save(update_fields=["gold_candidate"])
    logger.info("%s marked item %s gold with candidate %s", user, item.pk, candidate.pk)
    return item


def gold_items() -> QuerySet[AnnotationItem]:
    """Gold items with how often they were answered (``answered``) and answered right (``correct``)."""
    return (
        AnnotationItem.objects.filter(gold_candidate__isnull=False)
        .select_related("prompt", "gold_candidate", "model_version")
        .annotate(
            answered=Count("judgements", filter=~Q(judgements__kind=Judgement.Kind.SKIP)),
            correct=Count("judgements", filter=Q(judgements__chosen_candidate=F("gold_candidate"))),
        )
        .order_by("-id")
    )


def gold_suggestions(limit: int = 20) -> list[tuple[AnnotationItem, Candidate, int]]:
    """Best-of-N items where two or more annotators all chose the same candidate: good gold items.

    Returns ``(item, agreed candidate, answers)``, most answers first.
    """
    answered = ~Q(judgements__kind=Judgement.Kind.SKIP)
    items = (
        AnnotationItem.objects.filter(
            kind=AnnotationItem.Kind.BEST_OF_N, gold_candidate__isnull=True, prompt__is_heldout=False
        )
        .annotate(
            answers=Count("judgements", filter=answered),
            nones=Count("judgements", filter=Q(judgements__kind=Judgement.Kind.NONE_ACCEPTABLE)),
            distinct_choices=Count("judgements__chosen_candidate", distinct=True),
        )
        .filter(answers__gte=2, nones=0, distinct_choices=1)
        .select_related("prompt", "model_version")
        .order_by("-answers", "-id")[:limit]
    )
    items = list(items)
    agreed = dict(
        Judgement.objects.filter(item__in=items, kind=Judgement.Kind.CHOICE).values_list("item_id", "chosen_candidate_id")
    )
    candidates = Candidate.objects.in_bulk(agreed.values())
    return [(item, candidates[agreed[item.pk]], item.answers) for item in items]


# --- Reports ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """When an annotator is flagged; from settings so a project can tune them."""

    min_gold_accuracy: float
    min_seconds_per_item: float
    min_answers: int  # evidence needed before a flag: gold answers for accuracy, answers for speed
    position_bias_p: float

    @classmethod
    def from_settings(cls) -> "Thresholds":
        return cls(
            min_gold_accuracy=settings.QUALITY_MIN_GOLD_ACCURACY,
            min_seconds_per_item=settings.QUALITY_MIN_SECONDS_PER_ITEM,
            min_answers=settings.QUALITY_MIN_ANSWERS,
            position_bias_p=settings.QUALITY_POSITION_BIAS_P,
        )


@dataclass(frozen=True)
class _Answer:
    """One judgement, flattened: what the reports need and nothing else."""

    user_id: int
    username: str
    item_id: int
    version_id: int | None
    gold_candidate_id: int | None
    kind: str
    candidate_id: int | None
    position: int | None
    shown: int
    time_spent_ms: int

    @property
    def is_skip(self) -> bool:
        return self.kind == Judgement.Kind.SKIP

    @property
    def value(self) -> Hashable | None:
        """What agreement compares: the chosen candidate, "none" or "tie"; skips are missing."""
        if self.is_skip:
            return None
        return self.candidate_id if self.kind == Judgement.Kind.CHOICE else self.kind


def _answers(version: ModelVersion | None = None) -> list[_Answer]:
    """People's judgements: a system account's (an importer's) are a file's choices, not an annotator's."""
    judgements = by_people(Judgement.objects.all())
    if version is not None:
        judgements = judgements.filter(item__model_version=version)
    rows = judgements.order_by().values_list(
        "user_id", "user__username", "item_id", "item__model_version_id", "item__gold_candidate_id", "kind",
        "chosen_candidate_id", "chosen_position", "assignment__candidate_order", "time_spent_ms",
    )
    return [_Answer(*row[:8], len(row[8] or ()), row[9]) for row in rows]


def _units(answers: list[_Answer]) -> dict[int, dict[int, Hashable]]:
    """item → annotator → value, skips left out."""
    units: dict[int, dict[int, Hashable]] = defaultdict(dict)
    for answer in answers:
        if not answer.is_skip:
            units[answer.item_id][answer.user_id] = answer.value
    return units


def _position_bias(answers: list[_Answer]) -> metrics.PositionBias:
    return metrics.position_bias(
        (a.shown, a.position) for a in answers if a.kind == Judgement.Kind.CHOICE and a.position and a.shown
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Overall:
    """Agreement over every item answered by two or more annotators."""

    judgements: int
    overlapping_items: int
    alpha: float | None  # Krippendorff's alpha, nominal
    agreement: float | None  # observed pairwise agreement


def overall_agreement(*, version: ModelVersion | None = None) -> Overall:
    answers = _answers(version)
    units = [unit for unit in _units(answers).values() if len(unit) >= 2]
    return Overall(
        judgements=len(answers),
        overlapping_items=len(units),
        alpha=metrics.krippendorff_alpha_nominal(units),
        agreement=metrics.pairwise_agreement(units).rate,
    )


@dataclass
class AnnotatorRow:
    """One annotator's quality at a glance; ``flags`` says why a reviewer should look."""

    user_id: int
    username: str
    judgements: int
    skips: int
    none_acceptable_rate: float | None
    gold_seen: int  # gold items answered (not skipped)
    gold_correct: int
    gold_accuracy: float | None
    agreement: float | None  # share of their answers matching another annotator's on the same item
    agreement_compared: int
    position1_share: float | None
    position1_chance: float | None
    position_bias: metrics.PositionBias
    median_seconds: float | None  # per answered item
    pending_pairs: int = 0
    approved_pairs: int = 0
    rejected_pairs: int = 0
    flags: list[str] = field(default_factory=list)


def _flags(row: AnnotatorRow, answered: int, limits: Thresholds) -> list[str]:
    flags = []
    if row.gold_accuracy is not None and row.gold_seen >= limits.min_answers and row.gold_accuracy < limits.min_gold_accuracy:
        flags.append(f"gold accuracy {row.gold_accuracy:.0%} below {limits.min_gold_accuracy:.0%}")
    if row.median_seconds is not None and answered >= limits.min_answers and row.median_seconds < limits.min_seconds_per_item:
        flags.append(f"median {row.median_seconds:.1f} s per item, under {limits.min_seconds_per_item:g} s")
    bias = row.position_bias
    favourite = bias.favourite
    if bias.p_value is not None and bias.p_value < limits.position_bias_p and favourite is not None:
        flags.append(
            f"favours position {favourite.position}: {bias.share(favourite.position):.0%} of choices, "
            f"{bias.chance_share(favourite.position):.0%} by chance"
        )
    return flags


def annotator_report(*, version: ModelVersion | None = None) -> list[AnnotatorRow]:
    """A row per annotator with judgements (of ``version``'s items, or all), flagged ones first."""
    answers = _answers(version)
    limits = Thresholds.from_settings()
    agreement = metrics.agreement_by_coder(_units(answers).values())
    by_user: dict[int, list[_Answer]] = defaultdict(list)
    for answer in answers:
        by_user[answer.user_id].append(answer)
    pairs = PreferencePair.objects.filter(judgement__user_id__in=by_user)
    if version is not None:
        pairs = pairs.filter(model_version=version)
    pair_counts = {
        (user_id, status): n
        for user_id, status, n in pairs.order_by().values_list("judgement__user_id", "status").annotate(n=Count("id"))
    }
    rows = []
    for user_id, own in by_user.items():
        answered = [a for a in own if not a.is_skip]
        gold = [a for a in answered if a.gold_candidate_id is not None]
        correct = sum(a.candidate_id == a.gold_candidate_id for a in gold)
        bias = _position_bias(own)
        row = AnnotatorRow(
            user_id=user_id,
            username=own[0].username,
            judgements=len(own),
            skips=len(own) - len(answered),
            none_acceptable_rate=_rate(sum(a.kind == Judgement.Kind.NONE_ACCEPTABLE for a in answered), len(answered)),
            gold_seen=len(gold),
            gold_correct=correct,
            gold_accuracy=_rate(correct, len(gold)),
            agreement=agreement[user_id].rate if user_id in agreement else None,
            agreement_compared=agreement[user_id].compared if user_id in agreement else 0,
            position1_share=bias.share(1),
            position1_chance=bias.chance_share(1),
            position_bias=bias,
            median_seconds=_seconds(metrics.median(a.time_spent_ms for a in answered)),
            pending_pairs=pair_counts.get((user_id, PreferencePair.Status.PENDING), 0),
            approved_pairs=pair_counts.get((user_id, PreferencePair.Status.APPROVED), 0),
            rejected_pairs=pair_counts.get((user_id, PreferencePair.Status.REJECTED), 0),
        )
        row.flags = _flags(row, len(answered), limits)
        rows.append(row)
    return sorted(rows, key=lambda r: (not r.flags, r.username))


def _seconds(ms: float | None) -> float | None:
    return ms / 1000 if ms is not None else None


@dataclass(frozen=True)
class VersionRow:
    """How annotators judged one version's candidates (its regular items; gold items left out)."""

    version_id: int
    name: str
    is_active: bool
    items: int  # items with at least one judgement
    judgements: int
    skips: int
    none_acceptable_rate: float | None  # no candidate good enough: a model-quality proxy
    mean_chosen_position: float | None
    position_bias: metrics.PositionBias
    overlapping_items: int
    alpha: float | None
    agreement: float | None
    median_seconds: float | None


def version_report() -> list[VersionRow]:
    """A row per model version whose best-of-N items were judged, newest version first."""
    by_version: dict[int, list[_Answer]] = defaultdict(list)
    for answer in _answers():
        if answer.version_id is not None and answer.gold_candidate_id is None:
            by_version[answer.version_id].append(answer)
    versions = ModelVersion.objects.in_bulk(by_version)
    rows = []
    for version_id, own in by_version.items():
        answered = [a for a in own if not a.is_skip]
        positions = [a.position for a in answered if a.kind == Judgement.Kind.CHOICE and a.position]
        units = [unit for unit in _units(own).values() if len(unit) >= 2]
        version = versions[version_id]
        rows.append(
            VersionRow(
                version_id=version_id,
                name=version.name,
                is_active=version.is_active,
                items=len({a.item_id for a in own}),
                judgements=len(own),
                skips=len(own) - len(answered),
                none_acceptable_rate=_rate(sum(a.kind == Judgement.Kind.NONE_ACCEPTABLE for a in answered), len(answered)),
                mean_chosen_position=sum(positions) / len(positions) if positions else None,
                position_bias=_position_bias(own),
                overlapping_items=len(units),
                alpha=metrics.krippendorff_alpha_nominal(units),
                agreement=metrics.pairwise_agreement(units).rate,
                median_seconds=_seconds(metrics.median(a.time_spent_ms for a in answered)),
            )
        )
    return sorted(rows, key=lambda r: -r.version_id)
