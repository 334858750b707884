"""Exports of the platform's data for use outside it: TRL-ready preference pairs (JSONL and a
``datasets`` dataset), gold rewrites as SFT prompt/completion rows, and every raw judgement.

Each file's columns are declared once below; a record whose keys differ from its declaration stops
the export (``ExportError``), and ``manifest.json`` lists the columns, so no field is dropped silently.
The exported ``prompt`` is the raw toxic sentence, never the model's prompt template: TRL users
apply their own chat template.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .detoxifierai import FIELDS as DETOXIFIERAI_FIELDS
from .detoxifierai import preference_entries
from .records import gold_rewrites, outside_heldout_judgements, outside_heldout_pairs, reference_prompts
from .records import parse_since as parse_iso_since
from .models import Candidate, Judgement, PreferencePair, Prompt

PARTS = ("preferences", "sft", "judgements")
# Written only when asked for (``--what detoxifierai``): DetoxifierAI's user_preferences.json (see detoxifierai.py).
OPTIONAL_PARTS = ("detoxifierai",)
DETOXIFIERAI_FILE = "user_preferences.json"
STATUS_CHOICES = ("all", *PreferencePair.Status.values)

# Column -> Arrow dtype. Order is the column order of preferences.jsonl and preferences_hf/.
PREFERENCE_COLUMNS: dict[str, str] = {
    "prompt": "string",
    "chosen": "string",
    "rejected": "string",
    "pair_id": "int64",
    "prompt_id": "int64",
    "prompt_source": "string",
    "judgement_id": "int64",
    "annotator": "string",
    "model_version": "string",
    "model_version_id": "int64",
    "source": "string",
    "status": "string",
    "is_own_rewrite": "bool",
    "original_chosen_text": "string",
    "chosen_candidate_id": "int64",
    "rejected_candidate_id": "int64",
    "flagged": "bool",
    "flag_note": "string",
    "reviewed_by": "string",
    "reviewed_at": "string",
    "created_at": "string",
    "updated_at": "string",
}

# Which export column carries each PreferencePair field; tests check every model field is listed.
PAIR_FIELD_COLUMNS: dict[str, str] = {
    "id": "pair_id",
    "judgement": "judgement_id",
    "prompt": "prompt_id",
    "model_version": "model_version_id",
    "source": "source",
    "chosen_candidate": "chosen_candidate_id",
    "rejected_candidate": "rejected_candidate_id",
    "chosen_text": "chosen",
    "rejected_text": "rejected",
    "original_chosen_text": "original_chosen_text",
    "is_own_rewrite": "is_own_rewrite",
    "status": "status",
    "flagged": "flagged",
    "flag_note": "flag_note",
    "reviewed_by": "reviewed_by",
    "reviewed_at": "reviewed_at",
    "created_at": "created_at",
    "updated_at": "updated_at",
}

SFT_FIELDS: tuple[str, ...] = (
    "prompt",
    "completion",
    "is_reference",
    "prompt_id",
    "prompt_source",
    "pair_ids",
    "judgement_ids",
    "annotators",
    "model_versions",
    "original_chosen_texts",
    "reviewed_by",
    "reviewed_at",
)

JUDGEMENT_FIELDS: tuple[str, ...] = (
    "judgement_id",
    "assignment_id",
    "annotator",
    "user_id",
    "item_id",
    "prompt_id",
    "prompt",
    "prompt_source",
    "item_kind",
    "comparison_id",
    "model_version",
    "model_version_id",
    "kind",
    "shown_candidate_ids",
    "shown_candidates",
    "chosen_candidate_id",
    "chosen_position",
    "chosen_text",
    "own_rewrite",
    "skip_reason",
    "time_spent_ms",
    "shown_at",
    "created_at",
    "pair_ids",
)

# Which export column carries each Judgement field; tests check every model field is listed.
JUDGEMENT_FIELD_COLUMNS: dict[str, str] = {
    "id": "judgement_id",
    "assignment": "assignment_id",
    "user": "user_id",
    "item": "item_id",
    "kind": "kind",
    "chosen_candidate": "chosen_candidate_id",
    "chosen_position": "chosen_position",
    "own_rewrite": "own_rewrite",
    "skip_reason": "skip_reason",
    "time_spent_ms": "time_spent_ms",
    "created_at": "created_at",
}

SHOWN_CANDIDATE_FIELDS: tuple[str, ...] = (
    "candidate_id",
    "position",
    "text",
    "model_version",
    "decoding",
    "seed",
    "sample_index",
    "generation_seconds",
    "created_at",
)


class ExportError(Exception):
    """An export that cannot be written as asked; the message says why and what to do."""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def _checked(record: dict[str, Any], fields: Iterable[str], what: str) -> dict[str, Any]:
    """Refuse a record whose keys differ from its file's declared columns (a dropped or stray field)."""
    expected = list(fields)
    if list(record) != expected:
        missing, extra = set(expected) - set(record), set(record) - set(expected)
        raise ExportError(f"{what} record has missing fields {sorted(missing)} and unexpected fields {sorted(extra)}.")
    return record


# --- what to export -------------------------------------------------------------------------------


def parse_since(value: str | date | datetime | None) -> datetime | None:
    """An ISO date (start of that day, in the site's time zone) or datetime, as an aware datetime."""
    try:
        return parse_iso_since(value)
    except ValueError as exc:
        raise ExportError(f"--since must be an ISO date or datetime (e.g. 2025-01-31), got {value!r}.") from exc


def pairs_for_export(*, status: str = "approved", since: datetime | None = None) -> QuerySet[PreferencePair]:
    """Pairs with ``status`` ("all" for every status) created at or after ``since``, oldest first.

    Pairs of held-out prompts are never exported: evaluation must stay clean for whoever trains on this.
    """
    if status not in STATUS_CHOICES:
        raise ExportError(f"Unknown pair status {status!r}; use one of {', '.join(STATUS_CHOICES)}.")
    pairs = outside_heldout_pairs()
    if status != "all":
        pairs = pairs.filter(status=status)
    if since is not None:
        pairs = pairs.filter(created_at__gte=since)
    return pairs.order_by("id")


def judgements_for_export(*, since: datetime | None = None) -> QuerySet[Judgement]:
    """Every judgement (skips included) created at or after ``since``, oldest first; held-out prompts excluded."""
    judgements = outside_heldout_judgements()
    if since is not None:
        judgements = judgements.filter(created_at__gte=since)
    return judgements.order_by("id")


# --- record builders ------------------------------------------------------------------------------


def preference_records(queryset: QuerySet[PreferencePair] | None = None) -> Iterator[dict[str, Any]]:
    """TRL prompt/chosen/rejected rows with full provenance; approved pairs unless a queryset is given."""
    pairs = PreferencePair.objects.approved().order_by("id") if queryset is None else queryset
    pairs = pairs.select_related("prompt", "model_version", "judgement__user", "reviewed_by")
    for pair in pairs.iterator(chunk_size=2000):
        yield _checked(
            {
                "prompt": pair.prompt.text,
                "chosen": pair.chosen_text,
                "rejected": pair.rejected_text,
                "pair_id": pair.id,
                "prompt_id": pair.prompt_id,
                "prompt_source": pair.prompt.source,
                "judgement_id": pair.judgement_id,
                "annotator": _username(pair.judgement.user),
                "model_version": pair.model_version.name if pair.model_version else None,
                "model_version_id": pair.model_version_id,
                "source": pair.source,
                "status": pair.status,
                "is_own_rewrite": pair.is_own_rewrite,
                "original_chosen_text": pair.original_chosen_text,
                "chosen_candidate_id": pair.chosen_candidate_id,
                "rejected_candidate_id": pair.rejected_candidate_id,
                "flagged": pair.flagged,
                "flag_note": pair.flag_note,
                "reviewed_by": _username(pair.reviewed_by),
                "reviewed_at": _iso(pair.reviewed_at),
                "created_at": _iso(pair.created_at),
                "updated_at": _iso(pair.updated_at),
            },
            PREFERENCE_COLUMNS,
            "preferences",
        )


def _sft_row(prompt: Prompt, completion: str, *, is_reference: bool) -> dict[str, Any]:
    """An SFT row with empty provenance lists, filled in by the pairs merged into it."""
    return {
        "prompt": prompt.text,
        "completion": completion,
        "is_reference": is_reference,
        "prompt_id": prompt.id,
        "prompt_source": prompt.source,
        "pair_ids": [],
        "judgement_ids": [],
        "annotators": [],
        "model_versions": [],
        "original_chosen_texts": [],
        "reviewed_by": [],
        "reviewed_at": None,
    }


def sft_records(
    queryset: QuerySet[PreferencePair] | None = None, *, include_references: bool = False
) -> list[dict[str, Any]]:
    """Gold rewrites (approved own-rewrite pairs, one row per prompt and text) as prompt/completion.

    An own rewrite yields one pair per rejected candidate, all with the same chosen text, so rows
    are merged per (prompt, text) and keep the ids of every pair behind them. With
    ``include_references`` the imported human references of non-held-out prompts follow, flagged
    ``is_reference``; held-out prompts stay out so evaluation remains clean.
    """
    rows: list[dict[str, Any]] = []
    for group in gold_rewrites(queryset):
        first = group[0]
        row = _sft_row(first.prompt, first.chosen_text, is_reference=False)
        reviewed = [pair.reviewed_at for pair in group if pair.reviewed_at is not None]
        for pair in group:
            row["pair_ids"].append(pair.id)
            for column, value in (
                ("judgement_ids", pair.judgement_id),
                ("annotators", _username(pair.judgement.user)),
                ("model_versions", pair.model_version.name if pair.model_version else None),
                ("original_chosen_texts", pair.original_chosen_text),
                ("reviewed_by", _username(pair.reviewed_by)),
            ):
                if value is not None and value not in row[column]:
                    row[column].append(value)
        row["reviewed_at"] = _iso(max(reviewed)) if reviewed else None  # the newest review of the row
        rows.append(_checked(row, SFT_FIELDS, "sft"))
    if include_references:
        for prompt in reference_prompts().iterator(chunk_size=2000):
            for reference in dict.fromkeys(prompt.references):  # same reference twice is one row
                rows.append(_checked(_sft_row(prompt, reference, is_reference=True), SFT_FIELDS, "sft"))
    return rows


def _shown_candidate(candidate: Candidate, position: int) -> dict[str, Any]:
    return _checked(
        {
            "candidate_id": candidate.id,
            "position": position,
            "text": candidate.text,
            "model_version": candidate.model_version.name,
            "decoding": candidate.decoding,
            "seed": candidate.seed,
            "sample_index": candidate.sample_index,
            "generation_seconds": candidate.generation_seconds,
            "created_at": _iso(candidate.created_at),
        },
        SHOWN_CANDIDATE_FIELDS,
        "shown candidate",
    )


def judgement_records(queryset: QuerySet[Judgement] | None = None) -> Iterator[dict[str, Any]]:
    """Every judgement with all provenance: the candidates exactly as shown (order, texts, decoding)."""
    judgements = Judgement.objects.order_by("id") if queryset is None else queryset
    judgements = judgements.select_related(
        "user", "assignment", "item__prompt", "item__model_version", "chosen_candidate"
    ).prefetch_related("item__candidates__model_version", "pairs")
    for judgement in judgements.iterator(chunk_size=500):
        order: list[int] = list(judgement.assignment.candidate_order)
        by_id = {c.id: c for c in judgement.item.candidates.all()}
        missing = [i for i in order if i not in by_id]
        if missing:  # a candidate shown from outside the item would be a bug; export it anyway
            by_id.update(Candidate.objects.select_related("model_version").in_bulk(missing))
        unknown = [i for i in order if i not in by_id]
        if unknown:
            raise ExportError(f"Judgement {judgement.id} was shown candidates {unknown} that no longer exist.")
        item = judgement.item
        yield _checked(
            {
                "judgement_id": judgement.id,
                "assignment_id": judgement.assignment_id,
                "annotator": _username(judgement.user),
                "user_id": judgement.user_id,
                "item_id": judgement.item_id,
                "prompt_id": item.prompt_id,
                "prompt": item.prompt.text,
                "prompt_source": item.prompt.source,
                "item_kind": item.kind,
                "comparison_id": item.comparison_id,
                "model_version": item.model_version.name if item.model_version else None,
                "model_version_id": item.model_version_id,
                "kind": judgement.kind,
                "shown_candidate_ids": order,
                "shown_candidates": [_shown_candidate(by_id[i], n) for n, i in enumerate(order, start=1)],
                "chosen_candidate_id": judgement.chosen_candidate_id,
                "chosen_position": judgement.chosen_position,
                "chosen_text": judgement.chosen_candidate.text if judgement.chosen_candidate else None,
                "own_rewrite": judgement.own_rewrite,
                "skip_reason": judgement.skip_reason,
                "time_spent_ms": judgement.time_spent_ms,
                "shown_at": _iso(judgement.assignment.shown_at),
                "created_at": _iso(judgement.created_at),
                "pair_ids": sorted(p.id for p in judgement.pairs.all()),
            },
            JUDGEMENT_FIELDS,
            "judgements",
        )


def jsonl_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line, UTF-8 text kept as is (the format TRL and ``datasets`` read)."""
    for record in records:
        yield json.dumps(record, ensure_ascii=False) + "\n"


# --- writing an export directory ------------------------------------------------------------------


@dataclass
class ExportResult:
    directory: Path
    counts: dict[str, int] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> tuple[int, str]:
    digest, rows = hashlib.sha256(), 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for line in jsonl_lines(records):
            out.write(line)
            digest.update(line.encode())
            rows += 1
    return rows, digest.hexdigest()


def _save_hf_dataset(path: Path, records: list[dict[str, Any]]) -> list[str]:
    """``datasets.Dataset.save_to_disk`` with declared features, so empty or all-null columns keep their type."""
    import datasets  # heavy import, only needed here

    features = datasets.Features({name: datasets.Value(dtype) for name, dtype in PREFERENCE_COLUMNS.items()})
    # Column-wise, because from_list([]) would lose every column of an empty export.
    dataset = datasets.Dataset.from_dict({name: [r[name] for r in records] for name in PREFERENCE_COLUMNS}, features=features)
    dataset.save_to_disk(str(path), num_shards=None if records else 1)  # 0 shards would not load back
    return list(dataset.column_names)


def _check_target(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ExportError(
            f"Export directory {directory} already exists and is not empty; nothing was written. "
            "Choose a new directory."
        )


def export_dataset(
    directory: str | os.PathLike,
    *,
    what: Iterable[str] = PARTS,
    status: str = "approved",
    since: datetime | None = None,
    include_references: bool = False,
) -> ExportResult:
    """Write the chosen parts, a ``manifest.json`` and a dataset card into a new ``directory``.

    Files are written to a temporary sibling and renamed at the end, so a failed export leaves no
    half-written directory, and an existing non-empty directory is never touched. ``status``
    selects preference pairs ("approved" for training, "all" for analysis); SFT rows are always
    approved gold rewrites; ``since`` keeps pairs and judgements created at or after it.
    """
    parts = list(dict.fromkeys(what))
    unknown = [p for p in parts if p not in PARTS + OPTIONAL_PARTS]
    if unknown or not parts:
        raise ExportError(f"Unknown export part(s) {unknown or parts}; use any of {', '.join(PARTS + OPTIONAL_PARTS)}.")
    directory = Path(directory).resolve()
    _check_target(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    pairs = pairs_for_export(status=status, since=since)
    exported_at = timezone.now()
    manifest: dict[str, Any] = {
        "format": "detox-studio-export/1",
        "exported_at": exported_at.isoformat(),
        "filters": {
            "parts": parts,
            "status": status,
            "since": _iso(since),
            "include_references": include_references,
        },
        "prompt_note": "prompt is the raw toxic sentence; apply your own chat template.",
        "files": {},
    }
    stats: dict[str, Counter] = {}
    staging = directory.parent / f".{directory.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()  # not mkdtemp: its 0700 mode would stick to the finished export
    try:
        if "preferences" in parts:
            records = list(preference_records(pairs))
            rows, sha = _write_jsonl(staging / "preferences.jsonl", records)
            manifest["files"]["preferences.jsonl"] = {"rows": rows, "sha256": sha, "fields": list(PREFERENCE_COLUMNS)}
            columns = _save_hf_dataset(staging / "preferences_hf", records)
            manifest["files"]["preferences_hf"] = {
                "rows": rows,
                "format": "datasets.Dataset.save_to_disk",
                "fields": columns,
                "features": dict(PREFERENCE_COLUMNS),
            }
            for key in ("status", "annotator", "model_version", "source", "prompt_source"):
                stats[f"preferences_by_{key}"] = Counter(str(r[key]) for r in records)
        if "detoxifierai" in parts:
            entries = preference_entries(pairs)
            payload = json.dumps(entries, ensure_ascii=False, indent=2) + "\n"
            (staging / DETOXIFIERAI_FILE).write_text(payload, encoding="utf-8")
            manifest["files"][DETOXIFIERAI_FILE] = {
                "rows": len(entries),
                "sha256": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
                "fields": list(DETOXIFIERAI_FIELDS),
            }
        if "sft" in parts:
            gold = pairs_for_export(status=PreferencePair.Status.APPROVED, since=since)
            records = sft_records(gold, include_references=include_references)
            rows, sha = _write_jsonl(staging / "sft.jsonl", records)
            manifest["files"]["sft.jsonl"] = {"rows": rows, "sha256": sha, "fields": list(SFT_FIELDS)}
            stats["sft_by_origin"] = Counter("reference" if r["is_reference"] else "gold rewrite" for r in records)
            stats["sft_by_prompt_source"] = Counter(r["prompt_source"] for r in records)
        if "judgements" in parts:
            kinds, annotators, versions = Counter(), Counter(), Counter()

            def counted(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
                for record in records:
                    kinds[record["kind"]] += 1
                    annotators[record["annotator"]] += 1
                    versions[record["model_version"]] += 1
                    yield record

            rows, sha = _write_jsonl(staging / "judgements.jsonl", counted(judgement_records(judgements_for_export(since=since))))
            manifest["files"]["judgements.jsonl"] = {
                "rows": rows,
                "sha256": sha,
                "fields": list(JUDGEMENT_FIELDS),
                "shown_candidates_fields": list(SHOWN_CANDIDATE_FIELDS),
            }
            stats.update(judgements_by_kind=kinds, judgements_by_annotator=annotators, judgements_by_model_version=versions)
        manifest["counts"] = {name: dict(sorted(counter.items())) for name, counter in stats.items()}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(dataset_card(manifest), encoding="utf-8")
        _check_target(directory)  # someone may have filled it while we worked
        if directory.exists():
            directory.rmdir()  # empty, checked just above
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(
        directory=directory, counts={name: info["rows"] for name, info in manifest["files"].items()}, manifest=manifest
    )


# --- dataset card ---------------------------------------------------------------------------------

_FILE_DESCRIPTIONS = {
    "preferences.jsonl": "TRL-ready preference pairs (`prompt`, `chosen`, `rejected`) with provenance columns.",
    "preferences_hf": "The same rows as a `datasets` dataset: `datasets.load_from_disk(\"preferences_hf\")`.",
    "sft.jsonl": "Gold rewrites as SFT `prompt`/`completion` rows, one per prompt and text.",
    "judgements.jsonl": "Every raw judgement (choices, own rewrites, skips) with the candidates as shown.",
    DETOXIFIERAI_FILE: "DetoxifierAI's format: a JSON list of `toxic`, `chosen`, `rejected` (a list), one entry per choice.",
}


def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "n>1M"


def dataset_card(manifest: dict[str, Any]) -> str:
    """A Hugging Face style README.md: YAML header, files and counts, how to load, licence notes."""
    files = manifest["files"]
    configs = [
        (name.removesuffix(".jsonl"), name) for name in ("preferences.jsonl", "sft.jsonl", "judgements.jsonl") if name in files
    ]
    largest = max((info["rows"] for info in files.values()), default=0)
    header = [
        "---",
        "license: other",
        "license_name: detox-studio-annotations",
        "language:",
        "- en",
        "pretty_name: Detox Studio export",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- detoxification",
        "- preference",
        "- dpo",
        "- sft",
        "- trl",
        "size_categories:",
        f"- {_size_category(largest)}",
    ]
    if configs:
        header.append("configs:")
        for name, path in configs:
            header += [f"- config_name: {name}", "  data_files: " + path]
    header.append("---")
    filters = manifest["filters"]
    lines = [
        *header,
        "",
        "# Detox Studio export",
        "",
        f"Exported {manifest['exported_at']} from Detox Studio. Pair status: `{filters['status']}`; "
        f"since: `{filters['since'] or 'the beginning'}`; human references in SFT: "
        f"`{'yes' if filters['include_references'] else 'no'}`.",
        "",
        "## Files",
        "",
        "| file | rows | contents |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | {info['rows']} | {_FILE_DESCRIPTIONS[name]} |" for name, info in files.items()]
    lines += [
        "",
        "`manifest.json` lists the fields of every file (and the SHA-256 of each JSONL file); every row",
        "of a file has exactly those fields. Times are ISO 8601 strings in UTC; `decoding` is a JSON object.",
        "",
        "`prompt` is the raw toxic sentence, not wrapped in any chat or instruction template: apply",
        "your own (TRL's `DPOTrainer` and `SFTTrainer` accept these columns as they are).",
        "",
        "```python",
        "from datasets import load_dataset, load_from_disk",
        "",
        'pairs = load_from_disk("preferences_hf")  # or load_dataset("json", data_files="preferences.jsonl")',
        "```",
        "",
        "## Counts",
    ]
    for name, counter in manifest["counts"].items():
        lines += ["", f"### {name.replace('_', ' ')}", ""]
        lines += [f"- {key}: {value}" for key, value in counter.items()] or ["- none"]
    lines += [
        "",
        "## Licence",
        "",
        "- Toxic prompts and human references imported from ParaDetox (`s-nlp/paradetox`, prompt source",
        "  `paradetox`) are released by their authors under **CC0 1.0** (public domain dedication).",
        "  Prompts from other sources (see `prompt_source`) carry their own source's terms.",
        "- Everything else — the model's candidate rewrites, annotators' choices and own rewrites,",
        "  skip reasons, review decisions and edited gold rewrites — are annotations made on this",
        "  Detox Studio platform and belong to its operator; set a licence here before publishing.",
        "- The prompts are offensive by design: this data is for training models to remove toxicity.",
        "",
    ]
    return "\n".join(lines)
