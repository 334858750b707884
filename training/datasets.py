"""Training data drawn from the database: ParaDetox references and approved pairs, as plain records.

Records carry their row ids next to the text (``prompt_id``, ``pair_id``) so the snapshot saved with
a run, and with the checkpoint it produces, says exactly which rows were used. The rows come from
``annotations.records`` (the queries exports use too: nothing of a held-out prompt), then are cleaned
(``training.ml.data``); what cleaning dropped is counted in the snapshot summary.

SFT references are cleaned in two halves: echoes of their input when the run is started, and the
references evaluation's toxicity judge still flags in the training worker (``finish_sft_cleaning``),
because that judge may need torch (a trained judge embeds sentences) and the web process that starts
runs never loads it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from annotations.records import approved_pairs, gold_rewrites, parse_since, reference_prompts
from core import hooks
from core.roles import system_account_ids
from training.ml.data import add_input_rejections, drop_echoes, drop_toxic, read_jsonl, reconcile_preferences, write_jsonl
from training.ml.evaluate import DEFAULT_CLASSIFIER

from .models import ModelVersion

TOXICITY_PENDING = "pending"  # the references' toxicity filter still has to run (in the training worker)


@dataclass(frozen=True)
class DataFilters:
    """Which rows a run trains on. Every field is optional; ``None`` means no restriction."""

    approved_since: datetime | None = None  # pairs reviewed (approved) at or after this time
    annotator: str | None = None  # username of the annotator whose pairs to use
    source: str | None = None  # SFT: prompt source (e.g. "paradetox"); DPO: pair source ("annotation"/"arena"/"imported")
    include_references: bool = True  # SFT: train on imported human references
    include_gold_rewrites: bool = True  # SFT: train on approved "none acceptable" rewrites
    any_version: bool = False  # DPO: also pairs sampled from versions other than the parent (off-policy)
    reject_input: bool = True  # DPO: one more pair per chosen answer rejecting the toxic input itself
    reject_own_echo: bool = True  # DPO: ...rejecting the model's own echo of the input where the pool withheld one
    # DPO: ...only on prompts where the pool withheld such an echo; None: automatic (``input_rejection_rule``)
    reject_input_only_echoed: bool | None = None

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
    """Human references of non-held-out prompts (echoes dropped; still-toxic ones are dropped by
    ``finish_sft_cleaning`` in the worker) + approved gold rewrites."""
    records: list[dict[str, Any]] = []
    cleaning: dict[str, Any] = {}
    if filters.include_references:
        references = [
            {"prompt": prompt.text, "completion": ref, "prompt_id": prompt.id}
            for prompt in reference_prompts(source=filters.source).only("id", "text", "references").iterator(chunk_size=2000)
            for ref in prompt.references
        ]
        records, cleaning = drop_echoes(references)
        cleaning["toxicity_filter"] = TOXICITY_PENDING
    if filters.include_gold_rewrites:
        pairs = _approved_pairs(filters)
        for group in gold_rewrites(pairs):
            records.append({"prompt": group[0].prompt.text, "completion": group[0].chosen_text, "pair_id": group[0].id})
    return TrainingData(records, {"references": cleaning} if cleaning else {})


def cleaning_judge() -> str:
    """The toxicity classifier evaluation scores STA with (``hooks.TOXICITY_JUDGE``), else profanity-check."""
    return hooks.first_answer(hooks.TOXICITY_JUDGE) or DEFAULT_CLASSIFIER


def finish_sft_cleaning(run) -> None:
    """Drop the references of SFT ``run``'s frozen data that evaluation's toxicity judge still flags,
    and rewrite its snapshot file and summary (the counts name the judge); a no-op once done, so a
    retried run is not cleaned twice. Gold rewrites were approved by reviewers and stay.

    Runs in the training worker (the judge may load torch); ``ValueError`` when nothing is left to train on.
    """
    cleaning = run.data_snapshot.get("cleaning", {})
    if cleaning.get("references", {}).get("toxicity_filter") != TOXICITY_PENDING:
        return
    records = read_jsonl(run.snapshot_path)
    references = [r for r in records if "prompt_id" in r]
    kept, counts = drop_toxic(references, classifier=cleaning_judge())
    kept_ids = {id(r) for r in kept}
    records = [r for r in records if "prompt_id" not in r or id(r) in kept_ids]
    if not records:
        raise ValueError(f"No training data left: {counts['toxicity_filter']} flags every reference of this run as toxic.")
    partial = run.snapshot_path.with_name(run.snapshot_path.name + ".tmp")
    write_jsonl(partial, records)
    partial.replace(run.snapshot_path)
    run.data_snapshot = snapshot_summary(records, {**cleaning, "references": {**cleaning["references"], **counts}})
    run.save(update_fields=["data_snapshot"])


def parent_pairs(pairs, parent) -> Any:
    """Pairs sampled from ``parent``: its best-of-N items, or arena matches where it wrote a side."""
    return pairs.filter(
        Q(model_version=parent) | Q(chosen_candidate__model_version=parent) | Q(rejected_candidate__model_version=parent)
    )


def _voter(pair, system_ids: set[int]) -> str:
    """Whose vote ``pair`` is when annotators are reconciled: its annotator's, but an importer's
    judgements (a system account standing for the file's many raters) each count on their own."""
    if pair.judgement.user_id in system_ids:
        return f"imported judgement {pair.judgement_id}"
    return pair.judgement.user.get_username()


def _model_echoes(pairs, parent=None) -> dict[str, str]:
    """Prompt text -> an echo the pool withheld from an item these pairs were judged on: ``parent``'s
    where it has one (what the model being trained would say), else the newest item's."""
    best: dict[str, tuple[tuple[bool, int], str]] = {}
    for pair in pairs:
        item = pair.judgement.item
        rank = (parent is not None and item.model_version_id == parent.pk, item.pk)
        if item.model_echo and (pair.prompt.text not in best or rank > best[pair.prompt.text][0]):
            best[pair.prompt.text] = (rank, item.model_echo)
    return {prompt: echo for prompt, (_, echo) in best.items()}


def input_rejection_rule(filters: DataFilters, parent=None) -> tuple[bool, str]:
    """Whether input-rejection pairs go only to the prompts the model echoed, and the rule in words.

    Automatic unless ``filters.reject_input_only_echoed`` is set: every prompt while the parent comes from
    SFT (or is a base model), which still copies its input often; only echoed prompts once the parent was
    trained by DPO, where rejecting the input everywhere costs SIM and gains no J (bench/RESULTS.md,
    learning loop: rounds 2-3 of seven chains, sixth to tenth sessions).
    """
    if filters.reject_input_only_echoed is not None:
        only = filters.reject_input_only_echoed
        return only, "only prompts the model echoed" if only else "every prompt"
    if parent is not None and parent.kind == ModelVersion.Kind.DPO:
        return True, "only prompts the model echoed (automatic: the parent was trained by DPO)"
    return False, "every prompt (automatic: the parent was not trained by DPO)"


def dpo_data(filters: DataFilters, *, parent=None) -> TrainingData:
    """Prompt/chosen/rejected records from approved pairs, deduplicated and reconciled across annotators,
    with a pair rejecting the toxic input for each chosen answer unless ``filters.reject_input`` is off:
    the model's own echo of it where the pool withheld one (``filters.reject_own_echo``), else the prompt.

    Only pairs sampled from ``parent`` (on-policy) unless ``filters.any_version`` or no parent is given.
    """
    pairs = _approved_pairs(filters)
    if filters.source:
        pairs = pairs.filter(source=filters.source)
    if parent is not None and not filters.any_version:
        pairs = parent_pairs(pairs, parent)
    pairs = list(pairs.select_related("judgement__item"))
    system = system_account_ids()
    raw = [
        {
            "prompt": p.prompt.text,
            "chosen": p.chosen_text,
            "rejected": p.rejected_text,
            "pair_id": p.id,
            "annotator": _voter(p, system),
        }
        for p in pairs
    ]
    records, counts = reconcile_preferences(raw)
    if filters.reject_input:
        only_echoed, rule = input_rejection_rule(filters, parent)
        echoes = _model_echoes(pairs, parent) if filters.reject_own_echo or only_echoed else {}
        if not filters.reject_own_echo:  # keep which prompts the model echoed, but reject the stored text
            echoes = {prompt: prompt for prompt in echoes}
        records, added = add_input_rejections(records, echoes, only_echoed=only_echoed)
        counts.update(added, input_rejections_on=rule)
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
