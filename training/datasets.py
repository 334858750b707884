"""Training data drawn from the database: ParaDetox references and approved pairs, as plain records.

Records carry their row ids next to the text (``prompt_id``, ``pair_id``) so the snapshot saved with
a run, and with the checkpoint it produces, says exactly which rows were used.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from annotations.models import PreferencePair, Prompt


@dataclass(frozen=True)
class DataFilters:
    """Which rows a run trains on. Every field is optional; ``None`` means no restriction."""

    approved_since: datetime | None = None  # pairs reviewed (approved) at or after this time
    annotator: str | None = None  # username of the annotator whose pairs to use
    source: str | None = None  # SFT: prompt source (e.g. "paradetox"); DPO: pair source ("annotation"/"arena")
    include_references: bool = True  # SFT: train on imported human references
    include_gold_rewrites: bool = True  # SFT: train on approved "none acceptable" rewrites

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
            parsed = parse_datetime(since) or (parse_datetime(since + "T00:00:00+00:00") if len(since) == 10 else None)
            if parsed is None:
                raise ValueError(f"approved_since must be an ISO date or datetime, got {since!r}")
            data["approved_since"] = parsed
        return cls(**data)


def _approved_pairs(filters: DataFilters):
    pairs = PreferencePair.objects.approved().select_related("prompt").order_by("id")
    if filters.approved_since:
        pairs = pairs.filter(reviewed_at__gte=filters.approved_since)
    if filters.annotator:
        pairs = pairs.filter(judgement__user__username=filters.annotator)
    return pairs


def sft_records(filters: DataFilters) -> list[dict[str, Any]]:
    """Prompt/completion records: human references of non-held-out prompts + approved gold rewrites."""
    records: list[dict[str, Any]] = []
    if filters.include_references:
        prompts = Prompt.objects.for_annotation().exclude(references=[]).order_by("id")
        if filters.source:
            prompts = prompts.filter(source=filters.source)
        for prompt in prompts.only("id", "text", "references").iterator(chunk_size=2000):
            records.extend(
                {"prompt": prompt.text, "completion": ref, "prompt_id": prompt.id} for ref in prompt.references
            )
    if filters.include_gold_rewrites:
        seen: set[tuple[int, str]] = set()
        for pair in _approved_pairs(filters).filter(is_own_rewrite=True):
            key = (pair.prompt_id, pair.chosen_text)
            if key not in seen:
                seen.add(key)
                records.append({"prompt": pair.prompt.text, "completion": pair.chosen_text, "pair_id": pair.id})
    return records


def dpo_records(filters: DataFilters) -> list[dict[str, Any]]:
    """Prompt/chosen/rejected records from approved preference pairs."""
    pairs = _approved_pairs(filters)
    if filters.source:
        pairs = pairs.filter(source=filters.source)
    return [
        {"prompt": p.prompt.text, "chosen": p.chosen_text, "rejected": p.rejected_text, "pair_id": p.id}
        for p in pairs
        if p.chosen_text.strip() != p.rejected_text.strip()
    ]


def snapshot_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run's row and its model version keep about the data: counts, ids and a content hash."""
    from training.ml.data import snapshot_hash

    return {
        "count": len(records),
        "hash": snapshot_hash(records),
        "pair_ids": sorted({r["pair_id"] for r in records if "pair_id" in r}),
        "prompt_ids_count": len({r["prompt_id"] for r in records if "prompt_id" in r}),
    }
