"""Training data drawn from the database: ParaDetox references and approved pairs, as plain records.

Records carry their row ids next to the text (``prompt_id``, ``pair_id``) so the snapshot saved with
a run, and with the checkpoint it produces, says exactly which rows were used. The rows come from
``annotations.records`` (the queries exports use too: nothing of a held-out prompt), then are cleaned
(``training.ml.data.clean_references``, ``reconcile_preferences``); what cleaning dropped is counted
in the snapshot summary.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from annotations.records import approved_pairs, gold_rewrites, parse_since, reference_prompts
from training.ml.data import clean_references, reconcile_preferences


@dataclass(frozen=True)
class DataFilters:
    """Which rows a run trains on. Every field is optional; ``None`` means no restriction."""

    approved_since: datetime | None = None  # pairs reviewed (approved) at or after this time
    annotator: str | None = None  # username of the annotator whose pairs to use
    source: str | None = None  # SFT: prompt source (e.g. "paradetox"); DPO: pair source ("annotation"/"arena"/"imported")
    include_references: bool = True  # SFT: train on imported human references
    include_gold_rewrites: bool = True  # SFT: train on approved "none acceptable" rewrites
    any_version: bool = False  # DPO: also pairs sampled from versions other than the parent (off-policy)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["approved_since"] = self.approved_since.isoformat() if self.approved_since else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "DataFilters":
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown data filter(s): {', '.join(sorted(unknown))}")
        since = data.get("approved_since")
        if isinstance(since, str):
            try:
                data["approved_since"] = parse_since(since)
            except ValueError:
                raise ValueError(f"approved_since must be an ISO date or datetime, got {since!r}") from None
        return cls(**data)


@dataclass
class TrainingData:
    """The records a run trains on and what cleaning did to get them (counts, for the snapshot)."""

    records: list[dict[str, Any]]
    cleaning: dict[str, Any] = field(default_factory=dict)


def _approved_pairs(filters: DataFilters):
    pairs = approved_pairs().select_related("prompt", "judgement__user")
    if filters.approved_since:
        pairs = pairs.filter(reviewed_at__gte=filters.approved_since)
    if filters.annotator:
        pairs = pairs.filter(judgement__user__username=filters.annotator)
    return pairs


def sft_data(filters: DataFilters) -> TrainingData:
    """Human references of non-held-out prompts (echoes and still-toxic ones dropped) + approved gold rewrites."""
    records: list[dict[str, Any]] = []
    cleaning: dict[str, Any] = {}
    if filters.include_references:
        references = [
            {"prompt": prompt.text, "completion": ref, "prompt_id": prompt.id}
            for prompt in reference_prompts(source=filters.source).only("id", "text", "references").iterator(chunk_size=2000)
            for ref in prompt.references
        ]
        records, cleaning = clean_references(references)
    if filters.include_gold_rewrites:
        pairs = _approved_pairs(filters)
        for group in gold_rewrites(pairs):
            records.append({"prompt": group[0].prompt.text, "completion": group[0].chosen_text, "pair_id": group[0].id})
    return TrainingData(records, {"references": cleaning} if cleaning else {})


def parent_pairs(pairs, parent) -> Any:
    """Pairs sampled from ``parent``: its best-of-N items, or arena matches where it wrote a side."""
    return pairs.filter(
        Q(model_version=parent) | Q(chosen_candidate__model_version=parent) | Q(rejected_candidate__model_version=parent)
    )


def dpo_data(filters: DataFilters, *, parent=None) -> TrainingData:
    """Prompt/chosen/rejected records from approved pairs, deduplicated and reconciled across annotators.

    Only pairs sampled from ``parent`` (on-policy) unless ``filters.any_version`` or no parent is given.
    """
    pairs = _approved_pairs(filters)
    if filters.source:
        pairs = pairs.filter(source=filters.source)
    if parent is not None and not filters.any_version:
        pairs = parent_pairs(pairs, parent)
    raw = [
        {
            "prompt": p.prompt.text,
            "chosen": p.chosen_text,
            "rejected": p.rejected_text,
            "pair_id": p.id,
            "annotator": p.judgement.user.get_username(),
        }
        for p in pairs
    ]
    records, counts = reconcile_preferences(raw)
    return TrainingData(records, {"pairs": counts})


def sft_records(filters: DataFilters) -> list[dict[str, Any]]:
    return sft_data(filters).records


def dpo_records(filters: DataFilters, *, parent=None) -> list[dict[str, Any]]:
    return dpo_data(filters, parent=parent).records


def snapshot_summary(records: list[dict[str, Any]], cleaning: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a run's row and its model version keep about the data: counts, ids, a content hash and
    what cleaning dropped."""
    from training.ml.data import snapshot_hash

    pair_ids = {r["pair_id"] for r in records if "pair_id" in r}
    pair_ids.update(i for r in records for i in r.get("pair_ids", ()))
    summary = {
        "count": len(records),
        "hash": snapshot_hash(records),
        "pair_ids": sorted(pair_ids),
        "prompt_ids_count": len({r["prompt_id"] for r in records if "prompt_id" in r}),
    }
    if cleaning:
        summary["cleaning"] = cleaning
    return summary
